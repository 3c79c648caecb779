"""Footnote in Discord: the bot, its cogs, rendering and feedback."""
