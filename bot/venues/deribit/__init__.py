"""Deribit through ccxt: the adapter and the mapping of Deribit's answers, the only modules that
import ccxt."""
