"""Imports of prompt sets, responses and AlpacaEval judgments.

The CLI, the API and the upload form all call these. Each one validates the whole file before
writing and writes inside one transaction: a bad file changes nothing.
"""
