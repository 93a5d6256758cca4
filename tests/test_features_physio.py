"""Physiological extractors: formulas against NeuroKit2, alignment at known times, bad input,
real Empatica E4 signals (Stress-Predict)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from emotrace.errors import EmotraceError

nk = pytest.importorskip("neurokit2")
from emotrace.features import physio  # noqa: E402

SP = Path(__file__).resolve().parents[2] / "shared" / "data" / "stress-predict" / "Raw_data"
T0 = 1_644_829_925.0


def write_e4(path: Path, values: np.ndarray, rate: float, start: float = T0, *, fmt: str = "%.6f",
             rate_claim: float | None = None) -> Path:
    """A signal file in the Empatica E4 format (line 1 start, line 2 rate, then samples)."""
    values = np.atleast_2d(np.asarray(values, dtype=float).T).T
    cols = values.shape[1]
    lines = [", ".join([f"{start:.6f}"] * cols), ", ".join([f"{rate_claim or rate:.6f}"] * cols)]
    lines += [",".join(fmt % v for v in row) for row in values]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def pulses(beat_times: np.ndarray, duration: float, rate: float = 64.0) -> np.ndarray:
    """A PPG-like wave: one smooth pulse peaking at every beat time."""
    t = np.arange(int(duration * rate)) / rate
    x = np.zeros_like(t)
    for b in beat_times:
        x += np.exp(-0.5 * ((t - b) / 0.08) ** 2)
    return x


def step_beats(change_s: float, duration: float, before_bpm: float, after_bpm: float) -> np.ndarray:
    """Beat times at ``before_bpm`` with a beat exactly at ``change_s``, then ``after_bpm``."""
    b1 = np.arange(1.0, change_s + 1e-9, 60.0 / before_bpm)
    b1 = b1 + (change_s - b1[-1])  # a beat exactly at the change
    b2 = np.arange(change_s + 60.0 / after_bpm, duration - 0.5, 60.0 / after_bpm)
    return np.concatenate([b1, b2])


# --------------------------------------------------------------------------------------------
# formulas


@pytest.fixture(scope="module")
def ecg_peaks():
    ecg = nk.ecg_simulate(duration=60, sampling_rate=256, heart_rate=72, heart_rate_std=6,
                          random_state=3)
    _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=256), sampling_rate=256)
    return np.asarray(info["ECG_R_Peaks"])


@pytest.mark.parametrize("end", [8.0, 21.3, 37.75, 55.0])
def test_hrv_windows_equal_neurokit_hrv_time(ecg_peaks, end):
    peaks = ecg_peaks
    out = physio.hrv_windows(peaks / 256, np.array([end]), 4.0)[0]
    inside = peaks[(peaks / 256 > end - 4) & (peaks / 256 <= end + 1e-9)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nk.hrv_time(inside, sampling_rate=256)
    for j, name in enumerate(physio.HRV_COLUMNS[1:], start=1):
        assert out[j] == pytest.approx(float(ref[f"HRV_{name}"].iloc[0]), rel=1e-9, abs=1e-9), name
    assert out[0] == pytest.approx(60000 / float(ref["HRV_MeanNN"].iloc[0]))


def test_hrv_windows_drop_artefact_intervals_and_need_two():
    beats = np.array([0.0, 1.0, 2.0, 2.1, 3.0, 4.0])  # 2.0 -> 2.1 is 100 ms: an artefact
    out = physio.hrv_windows(beats, np.array([4.0, 1.5]), 4.5)
    kept = [1000.0, 1000.0, 900.0, 1000.0]  # the 100 ms interval is dropped
    assert out[0, physio.HRV_COLUMNS.index("MinNN")] == pytest.approx(900.0)
    assert out[0, physio.HRV_COLUMNS.index("MeanNN")] == pytest.approx(np.mean(kept))
    assert out[0, physio.HRV_COLUMNS.index("SDNN")] == pytest.approx(np.std(kept, ddof=1))
    assert np.isnan(out[1]).all()  # one interval before 1.5 s: nothing to measure


def test_window_mean_std_and_slope_against_direct_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400) + np.arange(400) * 0.01
    rate, t = 4.0, np.array([10.0, 33.25, 99.75])
    mean, std = physio.window_mean_std(x, 0.0, rate, t, 4.0)
    slope = physio.window_slope(x, 0.0, rate, t, 4.0)
    for i, ti in enumerate(t):
        idx = np.flatnonzero((np.arange(400) / rate > ti - 4) & (np.arange(400) / rate <= ti + 1e-12))
        assert mean[i] == pytest.approx(x[idx].mean())
        assert std[i] == pytest.approx(x[idx].std())
        assert slope[i] == pytest.approx(np.polyfit(idx / rate, x[idx], 1)[0])


# --------------------------------------------------------------------------------------------
# alignment at known times


def test_hr_step_appears_at_the_right_label_step(tmp_path):
    """BVP with 60 bpm until 70 s after time 0, then 100 bpm; the BVP file starts 10 s after
    the EDA file (time 0), so a wrong offset would shift the change by 20 steps."""
    change, duration = 60.0, 120.0
    beats = step_beats(change, duration, 60, 100)
    rec = tmp_path / "r1"
    write_e4(rec / "BVP.csv", pulses(beats, duration), 64, start=T0 + 10)
    write_e4(rec / "EDA.csv", np.full(int(130 * 4), 2.0), 4, start=T0)
    ex = physio.build("hrv")
    ts = np.arange(0, 130_000, 500)
    values, names, info = ex.extract(rec, ts)
    hr = values[:, names.index("hr")]
    t_s = ts / 1000
    first_fast_beat = 10 + change + 0.6  # recording time of the first 100 bpm beat
    changed = t_s[(hr > 62) & (t_s > 20)]
    assert abs(changed[0] - np.ceil(first_fast_beat * 2) / 2) <= 0.5
    assert hr[(t_s > 30) & (t_s < 69)] == pytest.approx(60, abs=1)
    assert hr[(t_s > 76) & (t_s < 128)] == pytest.approx(100, abs=2)
    assert (values[t_s < 10] == 0).all()  # before the BVP file starts: zero rows
    assert info["missing"] >= 20


def test_temperature_step_at_a_known_time(tmp_path):
    temp = np.where(np.arange(240) / 4 < 30.0, 32.0, 34.0)
    rec = tmp_path / "r1"
    write_e4(rec / "TEMP.csv", temp, 4)
    values, names, _ = physio.build("temp").extract(rec, np.arange(0, 60_000, 500))
    mean = values[:, names.index("temp")]
    ts = np.arange(0, 60_000, 500) / 1000
    assert ts[np.flatnonzero(mean > 32.001)[0]] == 30.0
    assert mean[ts == 34.0] == pytest.approx(34.0)


# --------------------------------------------------------------------------------------------
# simulated signals


def test_eda_counts_simulated_scrs(tmp_path):
    eda = nk.eda_simulate(duration=120, sampling_rate=4, scr_number=6, drift=0.0, noise=0.0,
                          random_state=2)
    rec = tmp_path / "r1"
    write_e4(rec / "EDA.csv", eda + 2.0, 4)
    values, names, info = physio.build("eda").extract(rec, np.arange(0, 120_000, 500))
    assert 3 <= info["scr_peaks"] <= 9
    rate = values[:, names.index("scr_rate")]
    full = np.arange(0, 120_000, 500) >= 60_000  # a whole minute of signal: rate = peak count
    assert rate[full] == pytest.approx(np.round(rate[full]))
    assert 0 < rate.max() <= info["scr_peaks"] and (rate >= 0).all()
    tonic = values[:, names.index("eda_tonic")]
    assert np.median(tonic[tonic != 0]) == pytest.approx(2.0 + np.median(eda), abs=0.5)


def test_resp_rate_of_simulated_breathing(tmp_path):
    rsp = nk.rsp_simulate(duration=90, sampling_rate=32, respiratory_rate=15, random_state=1)
    rec = tmp_path / "r1"
    write_e4(rec / "RESP.csv", rsp, 32)
    values, names, _ = physio.build("resp").extract(rec, np.arange(20_000, 90_000, 500))
    assert np.median(values[:, names.index("resp_rate")]) == pytest.approx(15, abs=1.5)


def test_accelerometer_at_rest_is_one_g(tmp_path):
    acc = np.tile([0.0, 0.0, 64.0], (32 * 30, 1))
    rec = tmp_path / "r1"
    write_e4(rec / "ACC.csv", acc, 32, fmt="%.0f")
    values, names, _ = physio.build("acc").extract(rec, np.arange(5_000, 30_000, 500))
    assert values[:, names.index("acc_mag")] == pytest.approx(1.0)
    assert values[:, names.index("acc_z")] == pytest.approx(1.0)
    assert values[:, names.index("acc_activity")] == pytest.approx(0.0)


def test_bio_uses_the_signals_present(tmp_path):
    rec = tmp_path / "r1"
    write_e4(rec / "TEMP.csv", np.full(200, 33.0), 4)
    write_e4(rec / "ACC.csv", np.tile([0.0, 64.0, 0.0], (32 * 50, 1)), 32, fmt="%.0f")
    values, names, _ = physio.build("bio").extract(rec, np.arange(0, 40_000, 500))
    assert names == physio.TEMP_COLUMNS + physio.ACC_COLUMNS
    assert values.shape == (80, len(names))
    assert physio.build("bio").duration(rec) == pytest.approx(50.0)


# --------------------------------------------------------------------------------------------
# bad input


def test_unknown_feature_set():
    with pytest.raises(EmotraceError, match="unknown physiological feature set"):
        physio.build("ecg")


def test_missing_signal_file_names_the_folder(tmp_path):
    rec = tmp_path / "r1"
    write_e4(rec / "TEMP.csv", np.full(200, 33.0), 4)
    with pytest.raises(EmotraceError, match=r"r1: no BVP.csv or ECG.csv for feature set 'hrv'"):
        physio.build("hrv").extract(rec, np.arange(0, 10_000, 500))


def test_wrong_rate_claim_is_caught_against_the_other_signals(tmp_path):
    rec = tmp_path / "r1"
    beats = np.arange(1.0, 299.0, 0.8)
    write_e4(rec / "BVP.csv", pulses(beats, 300), 64, rate_claim=32)  # really 64 Hz
    write_e4(rec / "EDA.csv", np.full(300 * 4, 2.0), 4)
    with pytest.raises(EmotraceError, match=r"BVP.csv, line 2: at the 32 Hz of line 2.*end 600 s"):
        physio.build("bio").extract(rec, np.arange(0, 10_000, 500))


def test_wrong_rate_claim_alone_gives_an_implausible_heart_rate(tmp_path):
    rec = tmp_path / "r1"
    beats = np.arange(1.0, 119.0, 0.8)  # 75 bpm at the true 64 Hz; 23.4 bpm at 20 Hz
    write_e4(rec / "BVP.csv", pulses(beats, 120), 64, rate_claim=20)
    with pytest.raises(EmotraceError, match=r"BVP.csv, line 2: the median heart rate is 2\d bpm"):
        physio.build("hrv").extract(rec, np.arange(0, 10_000, 500))


def test_signal_shorter_than_one_window(tmp_path):
    rec = tmp_path / "r1"
    write_e4(rec / "TEMP.csv", np.full(8, 33.0), 4)  # 2 s
    with pytest.raises(EmotraceError, match=r"TEMP.csv: the signals last 2.0 s, shorter than one 4 s"):
        physio.build("temp").extract(rec, np.arange(0, 2_000, 500))


@pytest.mark.parametrize(("lines", "match"), [
    (["1644829925.0", "4.0", "33.1", "abc", "33.2"], r"TEMP.csv, line 4: a sample is not a number"),
    (["1644829925.0", "four", "33.1"], r"TEMP.csv, line 2: line 2 should be the sampling rate"),
    (["1644829925.0", "0", "33.1"], r"TEMP.csv, line 2: sampling rate 0 Hz"),
    (["1644829925.0", "4.0"], r"TEMP.csv, line 3: no samples"),
    ([], r"TEMP.csv: the file is empty"),
])
def test_bad_signal_files_name_the_line(tmp_path, lines, match):
    rec = tmp_path / "r1"
    rec.mkdir()
    (rec / "TEMP.csv").write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(EmotraceError, match=match):
        physio.build("temp").extract(rec, np.arange(0, 10_000, 500))


# --------------------------------------------------------------------------------------------
# real signals


@pytest.mark.shared
def test_real_e4_heart_rate_agrees_with_the_devices_own_beats():
    """S05's BVP (64 Hz, 55 min): our beats vs the E4's IBI.csv (its clean beat-to-beat
    intervals), as mean heart rate over the same 10 s windows."""
    rec = SP / "S05"
    if not rec.is_dir():
        pytest.skip("needs ../shared/data/stress-predict (not in a user's clone)")
    t0 = physio.recording_start(rec)
    ibi_start = float((rec / "IBI.csv").read_text().splitlines()[0].split(",")[0])
    ibi = np.loadtxt(rec / "IBI.csv", skiprows=1, delimiter=",")
    ends = ibi[:, 0] + ibi_start - t0  # time of the beat that ends each interval
    t = np.arange(10.0, 3000.0, 1.0)
    lo, hi = np.searchsorted(ends, t - 10, "right"), np.searchsorted(ends, t, "right")
    total = np.concatenate([[0.0], np.cumsum(ibi[:, 1])])
    n = hi - lo
    e4 = np.full(len(t), np.nan)
    e4[n >= 3] = 60.0 / ((total[hi] - total[lo])[n >= 3] / n[n >= 3])
    values, names, info = physio.build("hrv", window=10.0).extract(rec, (t * 1000).astype(np.int64))
    hr = values[:, names.index("hr")]
    ok = np.isfinite(e4) & (hr > 0)
    assert (hr > 0).mean() > 0.95
    assert ok.sum() > 1000
    assert 50 < info["median_hr"] < 120
    assert np.median(np.abs(hr[ok] - e4[ok])) < 3.0
    assert np.corrcoef(hr[ok], e4[ok])[0, 1] > 0.5
