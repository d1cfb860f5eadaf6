"""The k-means++ starts' seeds: ``numpy.random.default_rng(seed).integers(2**63, size=n)``, drawn without
importing ``numpy.random``.

That import costs 18 ms, a sixteenth of a small photo's whole run (it brings ``secrets``, ``hmac`` and OpenSSL's
``hashlib``), for ten numbers. The same numbers come from numpy's two public algorithms written out here in
Python integers: ``SeedSequence`` (``numpy/random/bit_generator.pyx``) hashes the seed into PCG64's 128-bit
state and increment, and PCG64 (XSL-RR output, ``numpy/random/src/pcg64``) draws 64 bits, of which
``integers(2**63)`` keeps the top 63 (Lemire's method with a power-of-two range never rejects a draw).
``tests/test_seeds.py`` checks them against numpy itself, so a numpy that changed them would be noticed.
"""

from __future__ import annotations

_MASK32, _MASK64, _MASK128 = (1 << 32) - 1, (1 << 64) - 1, (1 << 128) - 1
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_POOL_SIZE = 4
_PCG_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645


def start_seeds(seed: int, n: int) -> list[int]:
    """The ``n`` seeds ``default_rng(seed).integers(2**63, size=n)`` gives (``seed`` >= 0)."""
    words = _state_words(_pool(seed), 8)  # generate_state(4, np.uint64): 8 words, little-endian pairs
    state_in, increment_in = (_join(words[0:4]), _join(words[4:8]))
    increment = ((increment_in << 1) | 1) & _MASK128
    state = _step(_step(0, increment) + state_in, increment)
    seeds = []
    for _ in range(n):
        state = _step(state, increment)
        seeds.append(_output(state) >> 1)
    return seeds


def _pool(seed: int) -> list[int]:
    """SeedSequence(seed).pool: the seed's 32-bit words hashed and mixed into four."""
    if seed < 0:
        raise ValueError("a seed is a whole number >= 0")
    entropy = [(seed >> shift) & _MASK32 for shift in range(0, max(seed.bit_length(), 1), 32)]
    hash_const = [_INIT_A]

    def hashmix(value):
        value ^= hash_const[0]
        hash_const[0] = (hash_const[0] * _MULT_A) & _MASK32
        value = (value * hash_const[0]) & _MASK32
        return value ^ (value >> 16)

    def mix(x, y):
        result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _MASK32
        return result ^ (result >> 16)

    pool = [hashmix(entropy[i] if i < len(entropy) else 0) for i in range(_POOL_SIZE)]
    for source in range(_POOL_SIZE):
        for target in range(_POOL_SIZE):
            if source != target:
                pool[target] = mix(pool[target], hashmix(pool[source]))
    for word in entropy[_POOL_SIZE:]:
        for target in range(_POOL_SIZE):
            pool[target] = mix(pool[target], hashmix(word))
    return pool


def _state_words(pool: list[int], n_words: int) -> list[int]:
    """SeedSequence.generate_state: ``n_words`` 32-bit words from the pool."""
    hash_const, words = _INIT_B, []
    for i in range(n_words):
        value = pool[i % _POOL_SIZE] ^ hash_const
        hash_const = (hash_const * _MULT_B) & _MASK32
        value = (value * hash_const) & _MASK32
        words.append(value ^ (value >> 16))
    return words


def _join(words: list[int]) -> int:
    """Four 32-bit words as PCG64 takes them: two little-endian 64-bit halves, the first the high one."""
    high, low = words[0] | words[1] << 32, words[2] | words[3] << 32
    return high << 64 | low


def _step(state: int, increment: int) -> int:
    return (state * _PCG_MULTIPLIER + increment) & _MASK128


def _output(state: int) -> int:
    """PCG's XSL-RR: the 128-bit state's halves xored, rotated right by its top six bits."""
    value, rotation = ((state >> 64) ^ state) & _MASK64, state >> 122
    return ((value >> rotation) | (value << (64 - rotation))) & _MASK64
