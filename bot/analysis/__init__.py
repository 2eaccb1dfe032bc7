"""The cost of hedging read back from the ledger: fees, slippage, funding, attribution, risk
scenarios and the headline summary."""
