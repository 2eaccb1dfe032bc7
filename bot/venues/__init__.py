"""Exchange ports and adapters. Only this package imports ccxt."""
