"""The exchange simulator: local servers that speak the venues' real market-data protocols.

- `model`: the market (pure, seeded, clock passed in): random walks, venue quotes, dislocations;
- `venue`: what every dialect shares (connections, batched sends, silence, drop);
- `binance`, `coinbase`, `okx`, `kraken`, `bitstamp`, `gemini`, `bitfinex`: the dialects
  (WebSocket protocol, frames, REST market lists);
- `replay`: serving a capture file instead of the model (Binance and Coinbase captures);
- `server`: the configured dialects (`DIALECTS`, `SimConfig.venues`) on their ports, the feed
  loop and the `/sim/` control API.

Run it with `python manage.py run_exchange_sim`.
"""
