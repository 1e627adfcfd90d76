"""Protocol peers of the meters the bridge reads, written from their published specifications.

A P1 port (DSMR 5.0.2, e-MUCS, DSMR 2.2, Luxembourg Smarty) on a real pty and a TCP
socket, a HomeWizard P1 meter's local API (v1 over HTTP, v2 over HTTPS with a test CA)
and a Shelly Pro 3EM's Gen2 RPC over WebSocket. Every server binds 127.0.0.1 only. The
bridge's tests, Home Assistant's end-to-end tests and the benchmarks share them
(benchmarks may not import tests: devtools/ is their common ground).
"""
