"""The paper venue and the simulated exchange engine it runs on: a seeded market, matching,
accounting and the listed instruments. ``hedgebot sim`` serves the same engine over Deribit's
API."""
