"""The matcher: a pure matching core and the Kafka service that runs one per partition.

Importing it changes nothing in the import system: the entry points install the compiled
modules' loader (see runtime.native).
"""
