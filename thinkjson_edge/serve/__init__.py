"""``thinkjson-edge serve``: extraction over local HTTP, locked down by default.

A surface like ``cli/`` and ``tui/``: it uses the pipeline and never the interface. Only
this package imports the web stack (Starlette, uvicorn, python-multipart, the ``serve``
extra), and only its ``app`` and ``server`` modules do, so ``import thinkjson_edge`` and
every other command stay free of it.

Modules, one job each: ``settings`` (limits and caps), ``auth`` (who may bind where, the API
key), ``problems`` (errors as JSON), ``intake`` (bounded bodies, JSON and multipart),
``request_options`` (a client's extraction options against the server's caps), ``worker``
(the bounded queue and the thread that owns the model), ``metrics``, ``responses`` (results
as JSON), ``chat`` (OpenAI's chat completions shape), ``streaming`` (server-sent events),
``app`` (routes and the request-id middleware) and ``server`` (binding and uvicorn).
"""
