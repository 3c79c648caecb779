"""Footnote: answers about news articles, every sentence footnoted to the article text."""
