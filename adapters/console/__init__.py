"""The web console (issue 15): a browser page served at /console, same origin as the API.

It holds no logic of the engine: every action it takes is a call of the public API with the
key the user signed in with, so what a key may see and change is decided by the API."""

from adapters.console.router import router

__all__ = ["router"]
