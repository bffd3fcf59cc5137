import pytest

# The helpers' asserts are rewritten like the tests' own, so a failing check reports its values.
pytest.register_assert_rewrite("tests.support")
