"""Tools above the services: the `clinic` CLI, the process stack, journeys, operations, the event client and the
AsyncAPI document. The services never import this package; it may import theirs."""
