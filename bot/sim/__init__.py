"""Deribit's API v2 (JSON-RPC over HTTP and WebSocket) served on 127.0.0.1 over a paper venue.

The exchange engine it fronts (market, matching, accounting) lives in ``bot.venues.paper``; this
package only speaks Deribit's wire format, its errors and the faults of the wire.
"""
