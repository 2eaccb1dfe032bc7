"""The daemon's policies over many simulated paths, a real price history or a recorded Deribit
chain: the engine, path generators, frontier, replay and the history loaders."""
