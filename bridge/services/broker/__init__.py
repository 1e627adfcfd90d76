"""What both MQTT outputs (the cloud reporter and the local output) need of a broker.

The client that minds refused publishes and closed sockets, the TLS context, the words
for what went wrong, and the reconnect backoff: proved by the cloud reporter, shared so
the two outputs cannot drift apart.
"""
