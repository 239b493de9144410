"""Pub/Sub as the services share it: the job message rerun-api publishes and the analyzer
decodes (`job_message`), the publisher (`publisher`; rerun-api and the benchmarks), and
the topics and subscriptions every environment creates from one file (`topology`; the
local stack, the tests and the chart's hook job).
"""
