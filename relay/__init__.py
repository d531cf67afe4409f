"""The relay: WebSocket fan-out of order books, trades and private executions."""
