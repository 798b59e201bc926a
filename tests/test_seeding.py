"""seeding.py: every image its own stream, from the run's seed."""

import torch

from maskgit.seeding import (
    candidate_generators,
    generators_from,
    image_generator,
    per_image_generators,
)


def _first(g: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=g))


def test_image_generators_follow_the_runs_seed_and_the_images_index():
    draws = {(seed, i): _first(image_generator(seed, i)) for seed in (0, 1, 7) for i in range(5)}
    assert len(set(draws.values())) == len(draws)  # every (seed, image) its own stream
    assert _first(image_generator(7, 3)) == draws[(7, 3)]  # and the same again


def test_one_generator_splits_into_distinct_reproducible_streams():
    streams = [_first(g) for g in generators_from(torch.Generator().manual_seed(5), 6)]
    assert len(set(streams)) == 6
    assert [_first(g) for g in per_image_generators(torch.Generator().manual_seed(5), 6)] == streams


def test_best_of_n_candidates_get_their_own_streams_and_leave_the_images_untouched():
    images = [image_generator(0, i) for i in range(3)]
    before = [g.get_state() for g in images]
    per_candidate = candidate_generators(images, 4)
    assert per_candidate[0] == images  # candidate 0: the images' own generators
    assert all(torch.equal(g.get_state(), s) for g, s in zip(images, before))  # not advanced
    draws = [[_first(g) for g in gens] for gens in per_candidate[1:]]
    flat = [d for row in draws for d in row] + [_first(image_generator(0, i)) for i in range(3)]
    assert len(set(flat)) == len(flat)
    again = candidate_generators([image_generator(0, i) for i in range(3)], 4)
    assert [[_first(g) for g in gens] for gens in again[1:]] == draws
    assert candidate_generators(None, 3) == [None, None, None]
