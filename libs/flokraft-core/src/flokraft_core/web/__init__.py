"""FastAPI building blocks shared by the HTTP services."""
