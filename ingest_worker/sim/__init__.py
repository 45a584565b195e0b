"""The exchange simulator: local servers that speak the venues' real market-data protocols.

- `model`: the market (pure, seeded, clock passed in): random walks, venue quotes, dislocations;
- `venue`: what both dialects share (connections, batched sends, silence, drop);
- `binance`, `coinbase`: the dialects (WebSocket protocol, frames, REST market lists);
- `replay`: serving a capture file instead of the model;
- `server`: both dialects on their ports, the feed loop and the `/sim/` control API.

Run it with `python manage.py run_exchange_sim`.
"""
