"""Wrong learned-position implementations that learners really write."""
from tests.bank import Bug

MODULE = "learned.LearnedPositionalEmbedding"
RESIZE = "learned.resize_position_table"

BUGS = [
    # ---- LearnedPositionalEmbedding: the table itself
    Bug("weight_plain_tensor", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def __init__(self, max_len, d):
        super().__init__(max_len, d)
        table = self.weight.detach().clone()
        del self.weight
        self.weight = table            # a plain tensor: not a parameter, never trained
''', mistake="expected an nn.Parameter", key="not-parameter"),
    Bug("init_embedding_default", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def __init__(self, max_len, d):
        super().__init__(max_len, d)
        self.emb = nn.Embedding(max_len, d)      # default init: std 1
        del self.weight
        self.weight = self.emb.weight
''', mistake="std 1", key="init"),
    Bug("init_zeros", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def __init__(self, max_len, d):
        super().__init__(max_len, d)
        nn.init.zeros_(self.weight)
''', mistake="std 0.02", key="init"),
    Bug("init_uniform", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def __init__(self, max_len, d):
        super().__init__(max_len, d)
        bound = 0.02 * 3 ** 0.5                  # right std, wrong distribution
        nn.init.uniform_(self.weight, -bound, bound)
''', mistake="is it uniform", key="init"),

    # ---- LearnedPositionalEmbedding: ids
    Bug("ids_clamped", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(x.shape[-2])
        ids = torch.as_tensor(position_ids).clamp(0, self.max_len - 1)   # "long inputs just work"
        return super().forward(x, ids)
''', mistake="clamping the ids", key="ids-clamped"),
    Bug("ids_negative_wrap", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(x.shape[-2])
        ids = torch.as_tensor(position_ids)
        if ids.max() >= self.max_len:
            raise ValueError(f"position ids must be below max_len={self.max_len}")
        return x + self.weight[ids].to(x.dtype)      # id -1 silently reads the last row
''', mistake="negative ids wrapping", key="ids-clamped"),
    Bug("ids_check_off_by_one", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(x.shape[-2])
        ids = torch.as_tensor(position_ids)
        if ids.min() < 0 or ids.max() > self.max_len:     # should be >= max_len
            raise ValueError(f"position ids must lie in [0, max_len={self.max_len})")
        return x + self.weight[ids].to(x.dtype)
''', mistake="IndexError", key="no-value-error"),
    Bug("ids_rejects_last_row", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(x.shape[-2])
        ids = torch.as_tensor(position_ids)
        if ids.min() < 0 or ids.max() >= self.max_len - 1:
            raise ValueError(f"position ids must lie in [0, max_len={self.max_len})")
        return x + self.weight[ids].to(x.dtype)
''', mistake="the last row included", key="last-row"),
    Bug("ids_ignored", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        return super().forward(x)
''', mistake="ignoring position_ids", key="positions-ignored"),
    Bug("error_names_nothing", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        try:
            return super().forward(x, position_ids)
        except ValueError:
            raise ValueError("position out of range") from None
''', mistake="should name the argument 'max_len'", key="no-value-error"),

    # ---- LearnedPositionalEmbedding: autograd, dtype, in place
    Bug("rows_detached", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        with torch.no_grad():                     # "it is only a lookup"
            rows = super().forward(torch.zeros_like(x), position_ids)
        return x + rows
''', mistake="no gradient reached", key="no-gradient"),
    Bug("returns_float32", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        return super().forward(x.float(), position_ids)
''', mistake="expected float16", key="wrong-dtype"),
    Bug("adds_in_place", MODULE, '''
_Right = LearnedPositionalEmbedding
class LearnedPositionalEmbedding(_Right):
    def forward(self, x, position_ids=None):
        out = super().forward(x, position_ids)
        with torch.no_grad():
            x.copy_(out)
        return out
''', mistake="in place", key="in-place"),

    # ---- resize_position_table
    Bug("resize_nearest", RESIZE, '''
def resize_position_table(table, new_len):
    if table.dim() != 2 or table.shape[0] < 2:
        raise ValueError("table must have at least 2 rows")
    if new_len < 2:
        raise ValueError(f"new_len must be at least 2, got new_len={new_len}")
    old_len = table.shape[0]
    idx = (torch.arange(new_len) * (old_len - 1) / (new_len - 1)).round().long()
    return table[idx].clone()
''', mistake="nearest-neighbour", key="resize-nearest"),
    Bug("resize_align_corners_false", RESIZE, '''
def resize_position_table(table, new_len):
    if table.dim() != 2 or table.shape[0] < 2:
        raise ValueError("table must have at least 2 rows")
    if new_len < 2:
        raise ValueError(f"new_len must be at least 2, got new_len={new_len}")
    out = torch.nn.functional.interpolate(table.T[None].float(), size=new_len, mode="linear")
    return out[0].T.to(table.dtype)
''', mistake="align_corners=False", key="resize-corners"),
    Bug("resize_drops_last_row", RESIZE, '''
def resize_position_table(table, new_len):
    if table.dim() != 2 or table.shape[0] < 2:
        raise ValueError("table must have at least 2 rows")
    if new_len < 2:
        raise ValueError(f"new_len must be at least 2, got new_len={new_len}")
    old_len = table.shape[0]
    coords = torch.arange(new_len, dtype=torch.float64) * old_len / new_len
    low = coords.floor().long().clamp(max=old_len - 1)
    high = (low + 1).clamp(max=old_len - 1)
    frac = (coords - low).to(torch.float32)[:, None]
    return (table.float()[low] * (1 - frac) + table.float()[high] * frac).to(table.dtype)
''', mistake="the last old row never reaches", key="resize-corners"),
    Bug("resize_returns_float32", RESIZE, '''
_right_resize = resize_position_table
def resize_position_table(table, new_len):
    return _right_resize(table, new_len).float()
''', mistake="expected float64", key="wrong-dtype"),
    Bug("resize_no_length_check", RESIZE, '''
_right_resize = resize_position_table
def resize_position_table(table, new_len):
    if new_len < 2:
        return table[:new_len].clone()
    return _right_resize(table, new_len)
''', mistake="naming 'new_len'", key="no-value-error"),
    Bug("resize_one_row_divides_by_zero", RESIZE, '''
def resize_position_table(table, new_len):
    if new_len < 2:
        raise ValueError(f"new_len must be at least 2, got new_len={new_len}")
    old_len = table.shape[0]
    coords = torch.arange(new_len, dtype=torch.float64) * (old_len - 1) / (new_len - 1)
    low = coords.floor().long().clamp(max=max(old_len - 2, 0))
    high = (low + 1).clamp(max=old_len - 1)
    frac = (coords - low).to(torch.float32)[:, None]
    return (table.float()[low] * (1 - frac) + table.float()[high] * frac).to(table.dtype)
''', mistake="naming 'table'", key="no-value-error"),
]
