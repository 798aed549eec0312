"""Alerts: subscriptions to conditions on the live state, delivered on the websocket and by signed webhook."""
