"""The suite's own settings (conftest.py): one intra-op thread unless a test asks for more."""

import os

import pytest
import torch


@pytest.mark.skipif("MASKGIT_TEST_THREADS" in os.environ, reason="MASKGIT_TEST_THREADS sets another count")
def test_the_suite_runs_on_one_thread_by_default():
    assert torch.get_num_threads() == 1


@pytest.mark.threads(2)
def test_a_test_may_ask_for_more_threads():
    assert torch.get_num_threads() == 2
