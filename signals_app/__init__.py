"""The Django app people touch (signal model, admin, API, Channels) and the shared contracts."""
