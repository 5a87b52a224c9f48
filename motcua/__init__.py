"""The tools that build the whole system: the service registry, the ``motcua`` command, the local stack.

``shared`` is the platform library every service imports; it knows no service. This package
knows them all (``motcua.registry``) and is imported by no service.
"""
