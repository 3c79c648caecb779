"""One cog per concern: asking (`ask`) and administration (`admin`)."""
