"""The versioned API for the clinic's other systems (``/api/v1``): keys, routes, problems."""
