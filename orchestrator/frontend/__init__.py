"""The device-facing side: the WSGI pipeline, its HTTP servers and the request protocol."""
