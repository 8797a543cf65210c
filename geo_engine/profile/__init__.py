"""Customer profile and velocity: who the customer is and how their interest is moving.

Pure (numpy, no I/O): behavioural event model (events), per-day KPI counts in a numpy ring
(ring), velocity and its crossings (velocity), RFM figures, scores and segments (rfm),
time-decayed category and channel affinity (affinity), home/work inference (places),
socio-demographics and consents (attributes), the in-memory state (state) and the assembled
read model (profile). The adapters load it from PostgreSQL, feed it and persist what it plans.
"""
