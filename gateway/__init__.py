"""The REST gateway: validates orders, produces them to `orders`, turns replies into HTTP results."""
