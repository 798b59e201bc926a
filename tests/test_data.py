import torch

from maskgit.data import StepBatchSampler, random_flip


def test_step_batches_do_not_depend_on_where_a_run_starts():
    full = list(StepBatchSampler(10, 4, seed=1, start_step=0, num_steps=8))
    late = list(StepBatchSampler(10, 4, seed=1, start_step=5, num_steps=3))
    assert late == full[5:]
    # Each epoch is a permutation: the first 10 positions cover every item once.
    flat = [i for batch in full for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))


def test_ranks_get_disjoint_slices_of_the_global_batch():
    ranks = [list(StepBatchSampler(16, 4, seed=0, num_steps=2, rank=r, world_size=2)) for r in range(2)]
    for step in range(2):
        assert not set(ranks[0][step]) & set(ranks[1][step])
    single = list(StepBatchSampler(16, 8, seed=0, num_steps=2))
    assert [a + b for a, b in zip(*ranks)] == single


def test_random_flip_is_seeded():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    a = random_flip(images, torch.Generator().manual_seed(5))
    b = random_flip(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    for i in range(2):
        assert torch.equal(a[i], images[i]) or torch.equal(a[i], images[i].flip(-1))


