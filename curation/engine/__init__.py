"""The engine: builds the pipeline from the stage table, plans shards and runs the stages on
a runner (in-process or Ray Data), sums their statistics. It talks to stages only through the
contract in stages/base.py."""
