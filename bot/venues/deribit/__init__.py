"""Deribit through ccxt: the adapter (the only ccxt importer) and the mapping of Deribit's
answers."""
