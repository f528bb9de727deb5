"""Wrong sinusoidal-encoding implementations that learners really write."""
from tests.bank import Bug

BUGS = [
    # ---- sinusoidal_encoding
    Bug("enc_concatenated", "sinusoidal.sinusoidal_encoding", '''
def sinusoidal_encoding(positions, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    positions = torch.as_tensor(positions)
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=positions.device) / d)
    angles = positions.double()[..., None] * inv_freq
    out = torch.cat((angles.sin(), angles.cos()), dim=-1)
    return out if positions.dtype == torch.float64 else out.float()
''', mistake="concatenated layout", key="pairing-convention"),
    Bug("enc_k_over_d", "sinusoidal.sinusoidal_encoding", '''
def sinusoidal_encoding(positions, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    positions = torch.as_tensor(positions)
    inv_freq = base ** (-torch.arange(d // 2, dtype=torch.float64, device=positions.device) / d)
    angles = positions.double()[..., None] * inv_freq
    out = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
    return out if positions.dtype == torch.float64 else out.float()
''', mistake="the exponent is 2k/d", key="exponent-k-over-d"),
    Bug("enc_swapped_sin_cos", "sinusoidal.sinusoidal_encoding", '''
def sinusoidal_encoding(positions, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    positions = torch.as_tensor(positions)
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=positions.device) / d)
    angles = positions.double()[..., None] * inv_freq
    out = torch.stack((angles.cos(), angles.sin()), dim=-1).flatten(-2)
    return out if positions.dtype == torch.float64 else out.float()
''', mistake="sine and cosine swapped", key="sin-cos-swapped"),
    Bug("enc_half_precision", "sinusoidal.sinusoidal_encoding", '''
def sinusoidal_encoding(positions, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    positions = torch.as_tensor(positions)
    inv_freq = (base ** (-torch.arange(0, d, 2, device=positions.device) / d)).half()
    angles = positions.half()[..., None] * inv_freq          # "the model runs in float16 anyway"
    out = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
    return out.double() if positions.dtype == torch.float64 else out.float()
''', mistake="angles computed in float16", key="half-precision"),
    Bug("enc_always_float32", "sinusoidal.sinusoidal_encoding", '''
_right_encoding = sinusoidal_encoding
def sinusoidal_encoding(positions, d, base=10000.0):
    return _right_encoding(positions, d, base).float()
''', mistake="expected float64", key="wrong-dtype"),
    Bug("enc_ignores_base", "sinusoidal.sinusoidal_encoding", '''
_right_encoding = sinusoidal_encoding
def sinusoidal_encoding(positions, d, base=10000.0):
    return _right_encoding(positions, d)
''', mistake="the default base 10000", key="default-argument"),
    Bug("enc_odd_d_accepted", "sinusoidal.sinusoidal_encoding", '''
_right_encoding = sinusoidal_encoding
def sinusoidal_encoding(positions, d, base=10000.0):
    if d % 2:
        return _right_encoding(positions, d + 1, base)[..., :d]
    return _right_encoding(positions, d, base)
''', mistake="expected a ValueError naming 'd'", key="no-value-error"),
    Bug("enc_frequencies_on_cpu", "sinusoidal.sinusoidal_encoding", '''
_right_encoding = sinusoidal_encoding
def sinusoidal_encoding(positions, d, base=10000.0):
    positions = torch.as_tensor(positions)
    if positions.device.type != "cpu":
        return _right_encoding(torch.zeros(positions.shape), d, base)
    return _right_encoding(positions, d, base)
''', mistake="positions.device", key="device"),

    # ---- sinusoidal_table
    Bug("table_starts_at_one", "sinusoidal.sinusoidal_table", '''
def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"t must be at least 1, got t={t}")
    return sinusoidal_encoding(torch.arange(1, t + 1), d, base)
''', mistake="positions 1..t", key="count-from-one"),
    Bug("table_ignores_base", "sinusoidal.sinusoidal_table", '''
def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"t must be at least 1, got t={t}")
    return sinusoidal_encoding(torch.arange(t), d)
''', mistake="the default base 10000", key="default-argument"),
    Bug("table_empty_allowed", "sinusoidal.sinusoidal_table", '''
def sinusoidal_table(t, d, base=10000.0):
    return sinusoidal_encoding(torch.arange(max(t, 0)), d, base)
''', mistake="expected a ValueError naming 't'", key="no-value-error"),
    Bug("table_float64", "sinusoidal.sinusoidal_table", '''
def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"t must be at least 1, got t={t}")
    return sinusoidal_encoding(torch.arange(t, dtype=torch.float64), d, base)
''', mistake="expected float32", key="wrong-dtype"),

    # ---- sinusoidal_offset_matrix
    Bug("offset_transposed", "sinusoidal.sinusoidal_offset_matrix", '''
def sinusoidal_offset_matrix(k, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    M = torch.zeros(d, d)
    for j in range(d // 2):
        angle = k * base ** (-2 * j / d)
        c, s = math.cos(angle), math.sin(angle)
        # the textbook rotation matrix, copied without checking the (sin, cos) order of the pair
        M[2 * j:2 * j + 2, 2 * j:2 * j + 2] = torch.tensor([[c, -s], [s, c]])
    return M
''', mistake="moves positions backwards", key="matrix-transposed"),
    Bug("offset_concatenated_layout", "sinusoidal.sinusoidal_offset_matrix", '''
def sinusoidal_offset_matrix(k, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    M = torch.zeros(d, d)
    h = d // 2
    for j in range(h):
        angle = k * base ** (-2 * j / d)
        c, s = math.cos(angle), math.sin(angle)
        M[j, j], M[j, j + h], M[j + h, j], M[j + h, j + h] = c, s, -s, c
    return M
''', mistake="concatenated layout", key="pairing-convention"),
    Bug("offset_k_over_d", "sinusoidal.sinusoidal_offset_matrix", '''
def sinusoidal_offset_matrix(k, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    M = torch.zeros(d, d)
    for j in range(d // 2):
        angle = k * base ** (-j / d)
        c, s = math.cos(angle), math.sin(angle)
        M[2 * j:2 * j + 2, 2 * j:2 * j + 2] = torch.tensor([[c, s], [-s, c]])
    return M
''', mistake="the exponent is 2j/d", key="exponent-k-over-d"),
    Bug("offset_wrong_sign", "sinusoidal.sinusoidal_offset_matrix", '''
def sinusoidal_offset_matrix(k, d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    M = torch.zeros(d, d)
    for j in range(d // 2):
        angle = k * base ** (-2 * j / d)
        c, s = math.cos(angle), math.sin(angle)
        M[2 * j:2 * j + 2, 2 * j:2 * j + 2] = torch.tensor([[c, s], [s, c]])   # lost the minus sign
    return M
''', mistake="Row p should be PE(p + k)", key="offset-direction"),
    Bug("offset_float64", "sinusoidal.sinusoidal_offset_matrix", '''
_right_offset = sinusoidal_offset_matrix
def sinusoidal_offset_matrix(k, d, base=10000.0):
    return _right_offset(k, d, base).double()
''', mistake="expected float32", key="wrong-dtype"),

    # ---- sinusoidal_wavelengths
    Bug("wavelengths_without_2pi", "sinusoidal.sinusoidal_wavelengths", '''
def sinusoidal_wavelengths(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)).float()
''', mistake="without the factor 2*pi", key="frequency-vs-wavelength"),
    Bug("wavelengths_k_over_d", "sinusoidal.sinusoidal_wavelengths", '''
def sinusoidal_wavelengths(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return (2 * math.pi * base ** (torch.arange(d // 2, dtype=torch.float64) / d)).float()
''', mistake="the exponent k/d", key="exponent-k-over-d"),
    Bug("wavelengths_are_frequencies", "sinusoidal.sinusoidal_wavelengths", '''
def sinusoidal_wavelengths(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return (base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)).float()
''', mistake="angular frequencies", key="frequency-vs-wavelength"),
    Bug("wavelengths_float64", "sinusoidal.sinusoidal_wavelengths", '''
def sinusoidal_wavelengths(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return 2 * math.pi * base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
''', mistake="expected float32", key="wrong-dtype"),
]
