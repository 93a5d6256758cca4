"""Physiological features (NeuroKit2) from raw wearable signals, at given timestamps.

Input: one folder per recording with E4-format CSV files (``BVP.csv`` or ``ECG.csv``,
``EDA.csv``, ``RESP.csv``, ``TEMP.csv``, ``ACC.csv``; line 1 the start time in unix seconds,
line 2 the rate in Hz). Every feature at timestamp ``t`` is measured over the causal window
``(t - W, t]``. Feature sets ``hrv``, ``eda``, ``resp``, ``temp``, ``acc`` and ``bio`` (all
present): their columns and formulas are in docs/usage.md, "The extraction driver and
physiological features".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotrace.errors import EmotraceError, located
from emotrace.features.base import package_version

FEATURE_SETS = ("hrv", "eda", "resp", "temp", "acc", "bio")
#: the signal files each set reads (hrv: the first one that exists)
SIGNALS = {"hrv": ("BVP.csv", "ECG.csv"), "eda": ("EDA.csv",), "resp": ("RESP.csv",),
           "temp": ("TEMP.csv",), "acc": ("ACC.csv",)}
ALL_FILES = ("BVP.csv", "ECG.csv", "EDA.csv", "RESP.csv", "TEMP.csv", "ACC.csv")
HRV_COLUMNS = ["hr", "MeanNN", "SDNN", "RMSSD", "SDSD", "CVNN", "CVSD", "MedianNN", "MadNN", "MCVNN",
               "IQRNN", "SDRMSSD", "Prc20NN", "Prc80NN", "pNN50", "pNN20", "MinNN", "MaxNN"]
EDA_COLUMNS = ["eda_tonic", "eda_phasic", "eda_phasic_std", "eda_tonic_slope", "scr_rate",
               "scr_amplitude"]
RESP_COLUMNS = ["resp_rate", "resp_amplitude"]
TEMP_COLUMNS = ["temp", "temp_slope"]
ACC_COLUMNS = ["acc_x", "acc_y", "acc_z", "acc_mag", "acc_mag_std", "acc_activity"]
RR_RANGE_MS = (300.0, 2000.0)
#: lowest sampling rates at which the detectors work (Hz)
MIN_RATE = {"BVP.csv": 20.0, "ECG.csv": 64.0, "EDA.csv": 1.0, "RESP.csv": 4.0, "TEMP.csv": 0.1,
            "ACC.csv": 1.0}
_LAYOUT = ("Each signal file needs the start time (unix seconds) on line 1, the sampling rate (Hz) "
           "on line 2 and one sample per line after that (the Empatica E4 export format).")


def _need_neurokit():
    try:
        import neurokit2 as nk
    except ImportError:
        raise EmotraceError('the physiological extractors need NeuroKit2: pip install '
                            '"emotrace[features]".') from None
    return nk


# --------------------------------------------------------------------------------------------
# reading


@dataclass
class Signal:
    """One signal file: samples ``(n, channels)`` at ``rate`` Hz, starting at unix time ``start``."""

    path: Path
    start: float
    rate: float
    values: np.ndarray  # float64 (n, channels)
    offset: float = 0.0  # seconds from the recording's time 0 to the first sample

    @property
    def duration(self) -> float:
        return len(self.values) / self.rate

    @property
    def end(self) -> float:
        return self.offset + self.duration


def _header_numbers(path: Path, text: str, line: int, what: str) -> float:
    cells = [c.strip() for c in text.split(",") if c.strip()]
    try:
        numbers = [float(c) for c in cells]
    except ValueError:
        raise located(path, f"line {line} should be the {what}, found {text.strip()[:60]!r}",
                      line=line, fix=_LAYOUT) from None
    if not numbers or not all(math.isfinite(x) for x in numbers):
        raise located(path, f"line {line} should be the {what}, found {text.strip()[:60]!r}",
                      line=line, fix=_LAYOUT)
    if len(set(numbers)) != 1:
        raise located(path, f"the columns disagree on the {what} ({', '.join(cells)})", line=line,
                      fix="Write one value per column, the same for all columns.")
    return numbers[0]


def read_header(path: Path) -> tuple[float, float]:
    """``(start unix seconds, rate Hz)`` from the first two lines of an E4-format signal file."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first, second = f.readline(), f.readline()
    except UnicodeDecodeError:
        raise located(path, "not a UTF-8 text file", fix=_LAYOUT) from None
    if not first.strip():
        raise located(path, "the file is empty", fix=_LAYOUT)
    start = _header_numbers(path, first, 1, "start time (unix seconds)")
    rate = _header_numbers(path, second, 2, "sampling rate (Hz)")
    if rate <= 0:
        raise located(path, f"sampling rate {rate:g} Hz on line 2", line=2,
                      fix="The sampling rate must be positive.")
    return start, rate


def _bad_line(path: Path, channels: int) -> tuple[int | None, str]:
    """The first sample line that is not ``channels`` numbers (diagnostic path only)."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for number, text in enumerate(f, start=1):
            if number <= 2 or not text.strip():
                continue
            cells = [c.strip() for c in text.strip().split(",")]
            if len(cells) != channels:
                return number, f"{len(cells)} cells, expected {channels}"
            for c in cells:
                try:
                    float(c)
                except ValueError:
                    return number, f"a sample is not a number ({c[:40]!r})"
    return None, "the samples cannot be read as numbers"


def read_signal(path: Path, *, channels: int = 1) -> Signal:
    """Read one E4-format signal file; NaN samples are allowed (gaps), text is an error."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    start, rate = read_header(path)
    names = [f"c{i}" for i in range(channels)]
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(
            skip_rows=2, column_names=names), convert_options=pacsv.ConvertOptions(
            column_types={n: pa.float64() for n in names}))
    except pa.ArrowInvalid:
        line, problem = _bad_line(path, channels)
        raise located(path, problem, line=line,
                      fix=f"Write {channels} numeric cell(s) per sample line. " + _LAYOUT) from None
    values = np.column_stack([table.column(n).to_numpy(zero_copy_only=False).astype(np.float64)
                              for n in names]) if table.num_rows else np.zeros((0, channels))
    if len(values) == 0:
        raise located(path, "no samples after the two header lines", line=3, fix=_LAYOUT)
    return Signal(path, start, rate, values)


def recording_start(folder: Path) -> float:
    """Time 0 of a recording: the earliest start time (unix s) of its signal files."""
    starts = [read_header(folder / name)[0] for name in ALL_FILES if (folder / name).is_file()]
    if not starts:
        raise located(folder, f"no signal file ({', '.join(ALL_FILES)})",
                      fix="Put one E4-format CSV file per signal in the recording's folder.")
    return min(starts)


def _check_rates(signals: list[Signal]) -> None:
    """Signals of one recording must cover about the same time: a wrong sampling-rate claim in a
    header stretches or squeezes its signal, which would silently misalign every feature."""
    if len(signals) < 2:
        return
    ends = np.array([s.end for s in signals])
    ref = float(np.median(ends))
    for s in signals:
        if abs(s.end - ref) > max(10.0, 0.1 * ref):
            raise located(s.path, f"at the {s.rate:g} Hz of line 2, its {len(s.values)} samples end "
                          f"{s.end:.0f} s after time 0, but the other signals of the recording end "
                          f"at about {ref:.0f} s", line=2,
                          fix="Check the sampling rate on line 2 (and the start time on line 1).")


# --------------------------------------------------------------------------------------------
# window statistics (vectorised over all timestamps)


def _bounds(sig_offset: float, rate: float, n: int, t: np.ndarray, w: float) -> tuple[np.ndarray,
                                                                                     np.ndarray]:
    """Index range ``[lo, hi)`` of the samples whose time lies in ``(t - w, t]``."""
    eps = 1e-9
    hi = np.floor((t - sig_offset) * rate + eps).astype(np.int64) + 1
    lo = np.floor((t - w - sig_offset) * rate + eps).astype(np.int64) + 1
    return np.clip(lo, 0, n), np.clip(hi, 0, n)


def window_mean_std(x: np.ndarray, offset: float, rate: float, t: np.ndarray, w: float,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of ``x`` over ``(t - w, t]``; NaN where less than half of the
    window has samples (NaN samples count as absent)."""
    ok = np.isfinite(x)
    centre = float(np.nanmean(x)) if ok.any() else 0.0
    xc = np.where(ok, x - centre, 0.0)
    c1 = np.concatenate([[0.0], np.cumsum(xc)])
    c2 = np.concatenate([[0.0], np.cumsum(xc * xc)])
    cn = np.concatenate([[0], np.cumsum(ok)])
    lo, hi = _bounds(offset, rate, len(x), t, w)
    n = (cn[hi] - cn[lo]).astype(np.float64)
    enough = n >= max(1.0, 0.5 * w * rate)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c1[hi] - c1[lo]) / n
        var = np.maximum((c2[hi] - c2[lo]) / n - mean * mean, 0.0)
    return np.where(enough, mean + centre, np.nan), np.where(enough, np.sqrt(var), np.nan)


def window_slope(x: np.ndarray, offset: float, rate: float, t: np.ndarray, w: float) -> np.ndarray:
    """Least-squares slope of ``x`` against time (units per second) over ``(t - w, t]``."""
    ok = np.isfinite(x)
    i = np.arange(len(x), dtype=np.float64)
    i0 = len(x) / 2.0
    ic = np.where(ok, i - i0, 0.0)
    centre = float(np.nanmean(x)) if ok.any() else 0.0
    xc = np.where(ok, x - centre, 0.0)
    sums = [np.concatenate([[0.0], np.cumsum(a)]) for a in (ok.astype(np.float64), ic, xc, ic * xc,
                                                            ic * ic)]
    lo, hi = _bounds(offset, rate, len(x), t, w)
    n, si, sx, six, sii = (s[hi] - s[lo] for s in sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = n * sii - si * si
        slope = (n * six - si * sx) / den * rate
    enough = (n >= max(2.0, 0.5 * w * rate)) & (den > 0)
    return np.where(enough, slope, np.nan)


def _sorted_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted ascending with NaN last, and the count of finite values per row."""
    return np.sort(m, axis=1), np.isfinite(m).sum(axis=1)


def _row_percentile(s: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Linear-interpolation percentile (NumPy's default) of each sorted row's first ``n`` values."""
    pos = (n - 1) * q / 100.0
    lo = np.clip(np.floor(pos).astype(np.int64), 0, s.shape[1] - 1)
    hi = np.clip(lo + 1, 0, s.shape[1] - 1)
    frac = pos - np.floor(pos)
    rows = np.arange(len(s))
    a, b = s[rows, lo], s[rows, hi]
    out = a + (np.where(frac > 0, b, a) - a) * frac
    return np.where(n > 0, out, np.nan)


def hrv_windows(peaks_s: np.ndarray, t: np.ndarray, w: float) -> np.ndarray:
    """Time-domain HRV (``HRV_COLUMNS``) over ``(t - w, t]`` from beat times ``peaks_s`` (s).

    Row ``i`` equals ``nk.hrv_time`` on the beats in window ``i`` (after dropping intervals
    outside ``RR_RANGE_MS``), with ``hr`` = 60000 / MeanNN prepended. Rows with fewer than 2
    valid intervals are NaN.
    """
    peaks_s = np.asarray(peaks_s, dtype=np.float64)
    out = np.full((len(t), len(HRV_COLUMNS)), np.nan)
    if len(peaks_s) < 3 or len(t) == 0:
        return out
    rr = np.diff(peaks_s) * 1000.0  # interval j: beats j and j + 1
    valid_rr = (rr >= RR_RANGE_MS[0]) & (rr <= RR_RANGE_MS[1])
    eps = 1e-9
    first = np.searchsorted(peaks_s, t - w + eps, side="left")  # first beat > t - w
    last = np.searchsorted(peaks_s, t + eps, side="left") - 1  # last beat <= t
    count = np.maximum(last - first, 0)  # intervals with both beats inside
    k = int(count.max()) if len(count) else 0
    if k < 2:
        return out
    idx = first[:, None] + np.arange(k)[None, :]
    inside = np.arange(k)[None, :] < count[:, None]
    idx_c = np.clip(idx, 0, len(rr) - 1)
    keep = inside & valid_rr[idx_c]
    m = np.where(keep, rr[idx_c], np.nan)
    # successive differences: adjacent intervals that are both kept
    d = m[:, 1:] - m[:, :-1]
    n_rr = keep.sum(axis=1).astype(np.float64)
    n_d = np.isfinite(d).sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(m, axis=1)
        sdnn = np.sqrt(np.nansum((m - mean[:, None]) ** 2, axis=1) / (n_rr - 1))
        rmssd = np.sqrt(np.nansum(d * d, axis=1) / n_d)
        dmean = np.nanmean(d, axis=1)
        sdsd = np.sqrt(np.nansum((d - dmean[:, None]) ** 2, axis=1) / (n_d - 1))
        s, n = _sorted_rows(m)
        median = _row_percentile(s, n, 50)
        dev = np.abs(m - median[:, None])
        sdev, _ = _sorted_rows(dev)
        mad = 1.4826 * _row_percentile(sdev, n, 50)
        iqr = _row_percentile(s, n, 75) - _row_percentile(s, n, 25)
        nn50 = np.nansum(np.abs(d) > 50, axis=1)
        nn20 = np.nansum(np.abs(d) > 20, axis=1)
        cols = {
            "hr": 60000.0 / mean, "MeanNN": mean, "SDNN": sdnn, "RMSSD": rmssd, "SDSD": sdsd,
            "CVNN": sdnn / mean, "CVSD": rmssd / mean, "MedianNN": median, "MadNN": mad,
            "MCVNN": mad / median, "IQRNN": iqr, "SDRMSSD": sdnn / rmssd,
            "Prc20NN": _row_percentile(s, n, 20), "Prc80NN": _row_percentile(s, n, 80),
            "pNN50": nn50 / (n_d + 1) * 100, "pNN20": nn20 / (n_d + 1) * 100,
            "MinNN": np.nanmin(np.where(keep, m, np.inf), axis=1),
            "MaxNN": np.nanmax(np.where(keep, m, -np.inf), axis=1),
        }
    for j, name in enumerate(HRV_COLUMNS):
        out[:, j] = cols[name]
    out[n_rr < 2] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out


# --------------------------------------------------------------------------------------------
# per-signal features


def _quiet_nk():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


def _nk_failed(sig: Signal, e: Exception) -> EmotraceError:
    return located(sig.path, f"NeuroKit2 cannot process this signal at the {sig.rate:g} Hz of line 2 "
                   f"({str(e)[:160]})", line=2, fix="Check the sampling rate on line 2 and that the "
                   "file holds the signal its name says.")


def _fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN samples (NeuroKit2's filters need finite input)."""
    ok = np.isfinite(x)
    if ok.all() or not ok.any():
        return np.nan_to_num(x)
    i = np.arange(len(x))
    return np.interp(i, i[ok], x[ok])


def beats(sig: Signal, kind: str) -> np.ndarray:
    """Beat times (s from the recording's time 0) from BVP (``kind="ppg"``) or ECG."""
    nk = _need_neurokit()
    x = _fill_gaps(sig.values[:, 0])
    rate = sig.rate
    ctx = _quiet_nk()
    try:
        if kind == "ppg":
            clean = nk.ppg_clean(x, sampling_rate=rate)
            _, info = nk.ppg_peaks(clean, sampling_rate=rate)
            peaks = np.asarray(info["PPG_Peaks"])
        else:
            clean = nk.ecg_clean(x, sampling_rate=rate)
            _, info = nk.ecg_peaks(clean, sampling_rate=rate)
            peaks = np.asarray(info["ECG_R_Peaks"])
    except (ValueError, IndexError, ZeroDivisionError) as e:
        raise _nk_failed(sig, e) from None
    finally:
        ctx.__exit__(None, None, None)
    return sig.offset + peaks.astype(np.float64) / rate


def hrv_features(sig: Signal, t: np.ndarray, *, window: float, kind: str) -> tuple[np.ndarray, dict]:
    peaks = beats(sig, kind)
    info: dict = {"beats": int(len(peaks))}
    if len(peaks) > 10:
        hr = 60.0 / np.median(np.diff(peaks))
        info["median_hr"] = round(float(hr), 1)
        if not 30 <= hr <= 200:
            raise located(sig.path, f"the median heart rate is {hr:.0f} bpm at the {sig.rate:g} Hz "
                          f"claimed on line 2", line=2,
                          fix="Check the sampling rate on line 2; a plausible heart rate is 30-200 "
                          "bpm.")
    return hrv_windows(peaks, t, window), info


def eda_features(sig: Signal, t: np.ndarray, *, window: float, long_window: float
                 ) -> tuple[np.ndarray, dict]:
    nk = _need_neurokit()
    x = _fill_gaps(sig.values[:, 0])
    ctx = _quiet_nk()
    try:
        clean = nk.eda_clean(x, sampling_rate=sig.rate)
        parts = nk.eda_phasic(clean, sampling_rate=sig.rate)
        tonic = parts["EDA_Tonic"].to_numpy(dtype=np.float64)
        phasic = parts["EDA_Phasic"].to_numpy(dtype=np.float64)
        try:
            _, info = nk.eda_peaks(phasic, sampling_rate=sig.rate)
            peaks = np.asarray(info["SCR_Peaks"], dtype=np.int64)
            amps = np.asarray(info["SCR_Amplitude"], dtype=np.float64)
        except (ValueError, IndexError):  # a flat signal without any SCR
            peaks, amps = np.zeros(0, np.int64), np.zeros(0)
    except (ValueError, IndexError, ZeroDivisionError) as e:
        raise _nk_failed(sig, e) from None
    finally:
        ctx.__exit__(None, None, None)
    gap = ~np.isfinite(sig.values[:, 0])
    tonic[gap], phasic[gap] = np.nan, np.nan
    tmean, _ = window_mean_std(tonic, sig.offset, sig.rate, t, window)
    pmean, pstd = window_mean_std(phasic, sig.offset, sig.rate, t, window)
    slope = window_slope(tonic, sig.offset, sig.rate, t, window)
    ok = np.isfinite(amps)
    ptimes = sig.offset + peaks[ok] / sig.rate
    amps = amps[ok]
    hi = np.searchsorted(ptimes, t + 1e-9, side="left")  # peaks <= t
    lo = np.searchsorted(ptimes, t - long_window + 1e-9, side="left")  # peaks > t - long
    n = (hi - lo).astype(np.float64)
    camp = np.concatenate([[0.0], np.cumsum(amps)])
    covered = np.minimum(t, sig.end) - np.maximum(t - long_window, sig.offset)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_pm = np.where(covered >= 0.5 * long_window, n / covered * 60.0, np.nan)
        amp = np.where(n > 0, (camp[hi] - camp[lo]) / n, 0.0)
    amp = np.where(np.isfinite(rate_pm), amp, np.nan)
    return np.column_stack([tmean, pmean, pstd, slope, rate_pm, amp]), {"scr_peaks": int(len(ptimes))}


def resp_features(sig: Signal, t: np.ndarray, *, window: float) -> tuple[np.ndarray, dict]:
    nk = _need_neurokit()
    x = _fill_gaps(sig.values[:, 0])
    ctx = _quiet_nk()
    try:
        signals, _ = nk.rsp_process(x, sampling_rate=sig.rate)
    except (ValueError, IndexError, ZeroDivisionError) as e:
        raise _nk_failed(sig, e) from None
    finally:
        ctx.__exit__(None, None, None)
    cols = []
    for name in ("RSP_Rate", "RSP_Amplitude"):
        v = signals[name].to_numpy(dtype=np.float64)
        cols.append(window_mean_std(v, sig.offset, sig.rate, t, window)[0])
    return np.column_stack(cols), {}


def temp_features(sig: Signal, t: np.ndarray, *, window: float, long_window: float
                  ) -> tuple[np.ndarray, dict]:
    x = sig.values[:, 0]
    mean, _ = window_mean_std(x, sig.offset, sig.rate, t, window)
    slope = window_slope(x, sig.offset, sig.rate, t, long_window) * 60.0
    return np.column_stack([mean, slope]), {}


def acc_features(sig: Signal, t: np.ndarray, *, window: float, scale: float) -> tuple[np.ndarray, dict]:
    xyz = sig.values / scale
    mag = np.sqrt((xyz ** 2).sum(axis=1))
    cols = [window_mean_std(xyz[:, i], sig.offset, sig.rate, t, window)[0] for i in range(3)]
    mmean, mstd = window_mean_std(mag, sig.offset, sig.rate, t, window)
    step = np.concatenate([[np.nan], np.abs(np.diff(mag))])
    activity, _ = window_mean_std(step, sig.offset, sig.rate, t, window)
    return np.column_stack([*cols, mmean, mstd, activity]), {}


# --------------------------------------------------------------------------------------------
# the extractor


@dataclass
class PhysioExtractor:
    """Physiological features of one recording folder (see the module docstring)."""

    name: str
    settings: dict = field(default_factory=dict)
    suffixes: tuple[str, ...] = ()

    def versions(self) -> dict[str, str]:
        out = {"emotrace.features.physio": "1"}
        out |= {pkg: package_version(pkg) for pkg in ("neurokit2", "numpy", "scipy")}
        return out

    def _parts(self, folder: Path) -> list[tuple[str, str]]:
        """``(part, file name)`` for the signals this feature set reads from ``folder``."""
        if not folder.is_dir():
            raise located(folder, "not a folder", fix="--signals DIR needs one folder per "
                          "recording, DIR/<recording_id>/, with the signal files inside.")
        wanted = list(SIGNALS) if self.name == "bio" else [self.name]
        parts: list[tuple[str, str]] = []
        for part in wanted:
            found = [f for f in SIGNALS[part] if (folder / f).is_file()]
            if found:
                parts.append((part, found[0]))
            elif self.name != "bio":
                raise located(folder, f"no {' or '.join(SIGNALS[part])} for feature set "
                              f"{self.name!r}", fix="Add the signal file (E4 format), or choose "
                              "a feature set whose signals the recording has.")
        if not parts:
            raise located(folder, f"no signal file ({', '.join(ALL_FILES)})",
                          fix="Put one E4-format CSV file per signal in the recording's folder.")
        return parts

    def _read(self, folder: Path) -> list[tuple[str, Signal]]:
        t0 = recording_start(folder)
        out = []
        for part, fname in self._parts(folder):
            sig = read_signal(folder / fname, channels=3 if part == "acc" else 1)
            if sig.rate < MIN_RATE[fname]:
                raise located(sig.path, f"sampling rate {sig.rate:g} Hz is too low for {part} "
                              f"(at least {MIN_RATE[fname]:g} Hz)", line=2,
                              fix="Check line 2, or record the signal at a higher rate.")
            sig.offset = sig.start - t0
            out.append((part, sig))
        _check_rates([s for _, s in out])
        return out

    def duration(self, path: Path) -> float:
        """Seconds from time 0 to the end of the latest signal this feature set reads."""
        return max(s.end for _, s in self._read(Path(path)))

    def columns(self, parts: list[str]) -> list[str]:
        table = {"hrv": HRV_COLUMNS, "eda": EDA_COLUMNS, "resp": RESP_COLUMNS, "temp": TEMP_COLUMNS,
                 "acc": ACC_COLUMNS}
        return [c for p in parts for c in table[p]]

    def extract(self, path: Path, timestamps_ms: np.ndarray) -> tuple[np.ndarray, list[str], dict]:
        folder = Path(path)
        t = np.asarray(timestamps_ms, dtype=np.float64) / 1000.0
        w = float(self.settings["window"])
        lw = float(self.settings["long_window"])
        blocks, parts, info = [], [], {}
        signals = self._read(folder)
        longest = max(s.end for _, s in signals)
        if longest < w:
            raise located(signals[0][1].path, f"the signals last {longest:.1f} s, shorter than one "
                          f"{w:g} s window", fix="Use a longer recording or a smaller --window.")
        for part, sig in signals:
            if part == "hrv":
                v, i = hrv_features(sig, t, window=w, kind="ecg" if sig.path.name == "ECG.csv"
                                    else "ppg")
            elif part == "eda":
                v, i = eda_features(sig, t, window=w, long_window=lw)
            elif part == "resp":
                v, i = resp_features(sig, t, window=w)
            elif part == "temp":
                v, i = temp_features(sig, t, window=w, long_window=lw)
            else:
                v, i = acc_features(sig, t, window=w, scale=float(self.settings["acc_scale"]))
            blocks.append(v)
            parts.append(part)
            info.update(i)
        values = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(t), 0))
        nan = ~np.isfinite(values)
        missing_rows = nan.all(axis=1)
        info["missing"] = int(missing_rows.sum())
        info["zero_cells"] = int(nan[~missing_rows].sum())
        info["duration_s"] = round(float(longest), 3)
        info["signals"] = [s.path.name for _, s in signals]
        values = np.where(nan, 0.0, values).astype(np.float32)
        return values, self.columns(parts), info


def build(feature_set: str, *, window: float = 4.0, long_window: float = 60.0,
          acc_scale: float = 64.0) -> PhysioExtractor:
    """A physiological extractor for ``feature_set`` (``hrv``, ``eda``, ``resp``, ``temp``,
    ``acc`` or ``bio``).

    Args:
        window: seconds of signal before each timestamp that a feature describes (4 s as the
            MuSe 2023 HRV features).
        long_window: seconds for the SCR rate and the temperature slope.
        acc_scale: accelerometer units per g (E4: 64).
    """
    if feature_set not in FEATURE_SETS:
        raise EmotraceError(f"--feature-set {feature_set!r}: unknown physiological feature set. "
                            f"Use one of {', '.join(FEATURE_SETS)}.")
    if not window > 0 or not long_window > 0 or not acc_scale > 0:
        raise EmotraceError(f"--window {window:g} / long window {long_window:g} / acc scale "
                            f"{acc_scale:g}: must be positive.")
    if feature_set in ("hrv", "eda", "resp", "bio"):
        _need_neurokit()
    settings = {"window": float(window), "long_window": float(long_window),
                "acc_scale": float(acc_scale), "anchor": "end", "rr_range_ms": list(RR_RANGE_MS),
                "eda_phasic": "highpass", "ppg_peaks": "elgendi", "ecg_peaks": "neurokit"}
    return PhysioExtractor(name=feature_set, settings=settings)
