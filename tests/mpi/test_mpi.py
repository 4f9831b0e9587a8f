"""nllk-score-mpi: `mpirun -n K` (K = 1..5, loopback, --oversubscribe) gives the bits of one process.

Every run is compared with the same program run without mpirun (whose bits tests/cli checks against the library):
the JSON loss/mean/sum/total_weight/count (printed with %.17g: round-trippable) and the --out file's bytes. The
shapes are chosen so shards are not block-aligned (7 samples of 3001 positions) and some ranks get no rows
(3 samples over 4 and 5 ranks). Errors: a bad target on a rank other than 0 (and on two ranks: the lowest global
index wins), a missing file, shapes that do not match, an output directory that does not exist: the same message
and exit code as one process, no output and no temporary file left.

ctest sets NLLK_SCORE and NLLK_MPIEXEC (tests/mpi/tests.cmake). By hand:
    NLLK_SCORE=build/nllk-score-mpi /usr/bin/python3 -m pytest -q tests/mpi
"""
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCORE = os.environ.get("NLLK_SCORE") or os.path.join(REPO, "build", "nllk-score-mpi")
PLAIN = os.path.join(os.path.dirname(SCORE), "nllk-score")  # the default binary, built beside it without MPI
MPIEXEC = os.environ.get("NLLK_MPIEXEC") or "mpirun"
KS = (1, 2, 3, 4, 5)

# Open MPI as root in a container: allow it, never try ssh, one node (loopback), more ranks than cores
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_plm_rsh_agent="",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
           # loopback only: the shared-memory transport, no probing of InfiniBand/libfabric/UCX (faster, quieter)
           OMPI_MCA_pml="ob1", OMPI_MCA_btl="self,vader", OMPI_MCA_mtl="^ofi", OMPI_MCA_osc="^ucx",
           NLLK_NUM_THREADS="1")
ENV.pop("NLLK_SCORE_MPI", None)


def run(args, k=None, timeout=60):
    cmd = [SCORE] + [str(a) for a in args]
    if k is not None:
        cmd = [MPIEXEC, "-q", "--oversubscribe", "-n", str(k)] + cmd
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def score_lines(stderr):
    """nllk-score's own lines (the temporary file's random suffix aside)."""
    return [re.sub(r"\.nllk-tmp\.[^/']*", ".nllk-tmp.HOST.PID.XXXXXX", ln) for ln in stderr.splitlines()
            if ln.startswith("nllk-score")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpi")
    rng = np.random.default_rng(7)
    f = {}

    def save(name, a):
        f[name] = str(d / name)
        np.save(f[name], a)

    # NLL (7, 5, 3001) f32, int64 targets with some ignored: shards of 7/K samples (not multiples of the block)
    x = np.log(rng.dirichlet(np.ones(5), size=(7, 3001)).transpose(0, 2, 1)).astype(np.float32)
    t = rng.integers(0, 5, (7, 3001)).astype(np.int64)
    t[rng.random((7, 3001)) < 0.1] = -100
    save("nx.npy", np.ascontiguousarray(x))
    save("nt.npy", t)
    save("w.npy", rng.random(5).astype(np.float32))
    bad = t.copy()
    bad[5, 17] = 9  # rank K-1 for K = 2, 3 (global flat index 5*3001 + 17)
    save("nt_bad.npy", bad)
    bad2 = bad.copy()
    bad2[3, 2999] = -3  # rank 1 of 2, rank 1 of 3: the lowest global index wins
    save("nt_bad2.npy", bad2)
    # NLL (3, 11) f64, int32 targets: 3 samples over 4 and 5 ranks (some ranks have no row)
    save("sx.npy", rng.standard_normal((3, 11)))
    save("st.npy", rng.integers(0, 11, 3).astype(np.int32))
    # Poisson f32 (1001, 37) log-rates, f64 1-D rates
    save("px.npy", (rng.standard_normal((1001, 37)) * 0.5).astype(np.float32))
    save("pt.npy", rng.poisson(1.5, (1001, 37)).astype(np.float32))
    save("qx.npy", rng.random(100003) + 0.01)
    save("qt.npy", rng.poisson(3.0, 100003).astype(np.float64))
    f["dir"] = d
    return f


KEYS = ("loss", "mean", "sum", "count", "total_weight", "dtype", "command", "reduction")


def compare(data, args, tag, out=False):
    """One process, then K = 1..5 ranks: the same result bits (and --out bytes)."""
    def go(k):
        a = list(args) + ["--json"]
        o = None
        if out:
            o = data["dir"] / f"{tag}-{k}.npy"
            a += ["--out", o]
        p = run(a, k)
        assert p.returncode == 0, (k, p.stderr)
        j = json.loads(p.stdout)
        return j, (o.read_bytes() if o else None)

    ref, ref_out = go(None)
    assert "ranks" not in ref
    for k in KS:
        j, b = go(k)
        for key in KEYS:
            assert repr(j[key]) == repr(ref[key]), (tag, k, key, j[key], ref[key])
        assert j["ranks"] == k and len(j["rank_seconds"]) == k
        if out:
            assert b == ref_out, (tag, k)
    leftovers = [p for p in os.listdir(data["dir"]) if ".nllk-tmp." in p]
    assert not leftovers


def test_nll_mean_out(data):
    compare(data, ["nll", "--input", data["nx.npy"], "--target", data["nt.npy"], "--chunk-rows", "2"], "nll-mean",
            out=True)


def test_nll_sum_weight(data):
    compare(data, ["nll", "--input", data["nx.npy"], "--target", data["nt.npy"], "--weight", data["w.npy"],
                   "--reduction", "sum"], "nll-sum")


def test_nll_none_positions(data):
    # chunks smaller than one sample (runs of positions inside a sample)
    compare(data, ["nll", "--input", data["nx.npy"], "--target", data["nt.npy"], "--weight", data["w.npy"],
                   "--reduction", "none", "--chunk-bytes", "20000"], "nll-none", out=True)


def test_nll_empty_ranks(data):
    compare(data, ["nll", "--input", data["sx.npy"], "--target", data["st.npy"], "--ignore-index", "4"], "nll-small",
            out=True)


def test_poisson_mean_out(data):
    compare(data, ["poisson", "--input", data["px.npy"], "--target", data["pt.npy"], "--chunk-rows", "100"],
            "poisson-mean", out=True)


def test_poisson_sum_full_none(data):
    compare(data, ["poisson", "--input", data["qx.npy"], "--target", data["qt.npy"], "--no-log-input", "--full",
                   "--reduction", "sum"], "poisson-sum")
    compare(data, ["poisson", "--input", data["qx.npy"], "--target", data["qt.npy"], "--no-log-input",
                   "--reduction", "none", "--chunk-bytes", "65536"], "poisson-none", out=True)


@pytest.mark.parametrize("k", [3, 5])
def test_bad_target_on_another_rank(data, k):
    out = data["dir"] / f"bad-{k}.npy"
    args = ["nll", "--input", data["nx.npy"], "--target", data["nt_bad.npy"], "--out", out]
    ref = run(args)
    assert ref.returncode == 6 and "flat index 15022" in ref.stderr
    p = run(args, k)
    assert p.returncode == 6, p.stderr
    assert score_lines(p.stderr) == score_lines(ref.stderr)
    assert not out.exists()
    assert not [q for q in os.listdir(data["dir"]) if ".nllk-tmp." in q]


def test_lowest_bad_target_wins(data):
    args = ["nll", "--input", data["nx.npy"], "--target", data["nt_bad2.npy"]]
    ref = run(args)
    assert ref.returncode == 6 and "flat index 12002" in ref.stderr
    p = run(args, 3)
    assert p.returncode == 6 and score_lines(p.stderr) == score_lines(ref.stderr)


@pytest.mark.parametrize("case", ["missing", "shape", "outdir", "fifo"])
def test_errors_agree(data, case):
    out = data["dir"] / "nodir" / "o.npy"
    fifo = data["dir"] / "fifo.npy"
    if case == "fifo" and not fifo.exists():
        os.mkfifo(fifo)  # every rank would block in open() for a writer that never comes (issue 16 item 3)
    args = {"missing": ["poisson", "--input", data["dir"] / "nope.npy", "--target", data["pt.npy"]],
            "fifo": ["poisson", "--input", fifo, "--target", data["pt.npy"]],
            "shape": ["poisson", "--input", data["px.npy"], "--target", data["qt.npy"]],
            "outdir": ["poisson", "--input", data["px.npy"], "--target", data["pt.npy"], "--out", out]}[case]
    ref = run(args)
    assert ref.returncode in (3, 4, 5)
    p = run(args, 4)
    assert p.returncode == ref.returncode, p.stderr
    assert score_lines(p.stderr) == score_lines(ref.stderr)
    assert p.stdout == ""


def test_no_mpirun_no_mpi():
    # the same binary without a launcher: no MPI at all (the README quick start)
    p = run(["demo", "--quiet"])
    assert p.returncode == 0 and p.stdout.strip()


def test_plain_binary_refuses_mpirun(data):
    # nllk-score links no MPI: under mpirun K copies would each score everything and race on --out
    p = subprocess.run([MPIEXEC, "-q", "--oversubscribe", "-n", "2", PLAIN, "demo", "--quiet"], env=ENV,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "nllk-score-mpi" in p.stderr, p.stderr


def test_progress_is_rank0s_view(data):
    # one bar for the job (rank 0's shard scaled to the whole job), not one per rank
    p = run(["poisson", "--input", data["px.npy"], "--target", data["pt.npy"], "--progress", "--chunk-rows", "50"], 3)
    assert p.returncode == 0, p.stderr
    bars = [ln for ln in p.stderr.replace("\r", "\n").splitlines() if "%" in ln and "GB" in ln]
    assert bars and sum("100.0%" in b for b in bars) == 1, p.stderr
    total = 2 * 1001 * 37 * 4 * 1e-9
    assert all(f"/{total:.2f} GB" in b for b in bars)


# ---- issue 16 item 10: one error line for a fault on one rank, no temporary file after Ctrl-C, --out "" ----------

@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpibig")
    x = np.zeros(24 * 1000 * 1000, np.float32)
    np.save(d / "t.npy", x)
    return d, x


def start(args, k, cwd):
    cmd = [MPIEXEC, "-q", "--oversubscribe", "-n", str(k), SCORE] + [str(a) for a in args]
    return subprocess.Popen(cmd, env=ENV, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_input_truncated_on_one_rank_one_line(big):
    d, x = big
    np.save(d / "x.npy", x)
    p = start(["poisson", "--input", "x.npy", "--target", "t.npy", "--out", "o.npy", "--reduction", "none",
               "--io", "mmap", "--chunk-rows", "200", "--threads", "1", "--progress"], 2, d)
    first = p.stderr.readline()
    assert "%" in first, first
    os.truncate(d / "x.npy", os.path.getsize(d / "x.npy") * 3 // 4)  # inside rank 1's shard only
    rest = p.stderr.read()
    rc = p.wait(timeout=120)
    if rc == 0:
        pytest.skip("the run finished before the truncation")
    lines = score_lines(rest)
    assert rc == 3, rest
    assert len(lines) == 1 and "x.npy changed while being read" in lines[0], rest
    assert not [q for q in os.listdir(d) if ".nllk-tmp." in q or q == "o.npy"]


def test_sigint_to_mpirun_leaves_no_temp(big):
    d, x = big
    np.save(d / "x.npy", x)
    for attempt in range(8):
        p = start(["poisson", "--input", "x.npy", "--target", "t.npy", "--out", "o.npy", "--reduction", "none",
                   "--io", "pread", "--chunk-rows", "500", "--threads", "1", "--progress"], 2, d)
        assert "%" in p.stderr.readline()
        time.sleep(0.05 * attempt)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=120)
        left = [q for q in os.listdir(d) if ".nllk-tmp." in q or ".tmp-" in q]
        assert not left, (attempt, left)
        if os.path.exists(d / "o.npy"):
            os.remove(d / "o.npy")


def test_empty_out_rejected_before_any_work(data):
    p = run(["poisson", "--input", data["px.npy"], "--target", data["pt.npy"], "--out", ""], 3)
    assert p.returncode == 2, p.stderr
    lines = score_lines(p.stderr)
    assert len(lines) == 1 and "--out" in lines[0], p.stderr


# ---- several parts per input (issue 17): ranks split the concatenated rows -------------------------------------

def _parts(data, name, sizes, tag):
    a = np.load(data[name])
    names, k = [], 0
    for i, s in enumerate(sizes):
        p = str(data["dir"] / f"{tag}_{i:02d}.npy")
        np.save(p, a[k:k + s])
        names.append(p)
        k += s
    assert k == a.shape[0]
    return names


def test_nll_parts(data):
    """(7, 5, 3001) in input parts of 2, 0, 3, 2 samples and target parts of 4, 3: every K gives the bits (and the
    --out bytes) of one process, which are those of the single files."""
    xs = _parts(data, "nx.npy", [2, 0, 3, 2], "nxp")
    ts = _parts(data, "nt.npy", [4, 3], "ntp")
    args = ["nll", "--input", *xs, "--target", *ts, "--weight", data["w.npy"], "--chunk-rows", "2"]
    compare(data, args, "nll-parts", out=True)
    one = json.loads(run(["nll", "--input", data["nx.npy"], "--target", data["nt.npy"], "--weight", data["w.npy"],
                          "--json"]).stdout)
    parts = json.loads(run(args + ["--json"]).stdout)
    for key in KEYS:
        assert repr(parts[key]) == repr(one[key]), key
    assert parts["inputs"] == xs and parts["targets"] == ts


def test_poisson_parts_integer_counts(data):
    x = np.load(data["px.npy"])
    t = np.load(data["pt.npy"]).astype(np.int32)
    xs, ts = [], []
    for i, (a, b) in enumerate([(0, 400), (400, 401), (401, 1001)]):
        xs.append(str(data["dir"] / f"pxp_{i}.npy"))
        ts.append(str(data["dir"] / f"ptp_{i}.npy"))
        np.save(xs[-1], x[a:b])
        np.save(ts[-1], t[a:b])
    compare(data, ["poisson", "--input", *xs, "--target", *ts, "--chunk-rows", "50"], "poisson-parts", out=True)
    one = json.loads(run(["poisson", "--input", data["px.npy"], "--target", data["pt.npy"], "--json"]).stdout)
    parts = json.loads(run(["poisson", "--input", *xs, "--target", *ts, "--json"]).stdout)
    assert repr(parts["loss"]) == repr(one["loss"])


@pytest.mark.parametrize("cmd", ["nll", "ce"])
def test_per_class(data, cmd):
    """--per-class: every K gives one process's per-class sums, total weights and counts (bits), also over parts
    (some targets ignored; 7 samples of 3001 positions over K = 1..5 ranks: shards inside the classes' blocks)."""
    xs = _parts(data, "nx.npy", [2, 5], "pcx")
    for args in (["--input", data["nx.npy"], "--target", data["nt.npy"]], ["--input", *xs, "--target", data["nt.npy"]]):
        a = [cmd, *args, "--weight", data["w.npy"], "--per-class", "--chunk-rows", "2", "--json"]
        p = run(a)
        assert p.returncode == 0, p.stderr
        ref = json.loads(p.stdout)["per_class"]
        assert ref["class"] == [0, 1, 2, 3, 4]
        for k in KS:
            p = run(a, k)
            assert p.returncode == 0, (k, p.stderr)
            assert repr(json.loads(p.stdout)["per_class"]) == repr(ref), k


def test_ce_parts(data):
    """ce on the NLL data read as logits (class indices, smoothing, weight) and with --probs, in parts: every K
    gives one process's bits and --out bytes."""
    xs = _parts(data, "nx.npy", [3, 4], "cxp")
    ts = _parts(data, "nt.npy", [2, 5], "ctp")
    compare(data, ["ce", "--input", *xs, "--target", *ts, "--weight", data["w.npy"], "--label-smoothing", "0.1",
                   "--chunk-rows", "2"], "ce-parts", out=True)
    q = np.exp(np.load(data["nx.npy"]))  # (7, 5, 3001) probabilities over the class axis
    np.save(data["dir"] / "cq.npy", q)
    compare(data, ["ce", "--probs", "--input", data["nx.npy"], "--target", data["dir"] / "cq.npy",
                   "--chunk-bytes", "30000"], "ce-probs", out=True)
