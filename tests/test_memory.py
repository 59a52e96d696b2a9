"""Reading memory: figures agree with the kernel's; OS errors become memdash errors."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from dashboard import errors, memory
from tests.conftest import MiB, spawn_with_pid, wait_for


def test_fast_rss_agrees_with_vmrss_after_a_known_allocation(allocator):
    # Given a child that allocates and touches 100 MiB
    before = memory.read_fast(allocator.pid)["rss"]
    allocator.alloc(100)
    # When memdash reads it, right next to the kernel's own VmRSS
    rss = memory.read_fast(allocator.pid)["rss"]
    vmrss = allocator.vmrss()
    # Then the two agree within 2 %, and the growth is the allocation
    assert abs(rss - vmrss) <= 0.02 * vmrss
    assert 95 * MiB <= rss - before <= 110 * MiB


def test_detail_sees_the_allocation_as_private_anonymous_memory(allocator):
    # Given a child that allocates 64 MiB
    before = memory.read_detail(allocator.pid)
    allocator.alloc(64)
    # When the detail figures are read
    after = memory.read_detail(allocator.pid)
    # Then USS, PSS and anon all grew by about 64 MiB
    for name in ("uss", "pss", "anon"):
        assert 60 * MiB <= after[name] - before[name] <= 70 * MiB, name


def test_detail_without_smaps_rollup_falls_back_to_psutil(allocator, monkeypatch, tmp_path):
    # Given a kernel without smaps_rollup (the path memdash reads points at nothing)
    rollup = memory.read_detail(allocator.pid)
    monkeypatch.setattr(memory, "ROLLUP_PATH", str(tmp_path / "missing-{pid}"))
    # When the detail figures are read, before and after a 64 MiB allocation
    before = memory.read_detail(allocator.pid)
    allocator.alloc(64)
    after = memory.read_detail(allocator.pid)
    # Then they agree with smaps_rollup's (within 1 MiB) and see the allocation
    assert set(before) == set(rollup) == {"uss", "pss", "swap", "anon"}
    for name in rollup:
        assert abs(before[name] - rollup[name]) <= MiB, (name, before[name], rollup[name])
    for name in ("uss", "pss", "anon"):
        assert 60 * MiB <= after[name] - before[name] <= 70 * MiB, name
    monkeypatch.undo()
    again = memory.read_detail(allocator.pid)
    for name in again:
        assert abs(after[name] - again[name]) <= MiB, (name, after[name], again[name])


def test_detail_fallback_on_a_gone_process_is_no_such_process(monkeypatch, tmp_path):
    # Given no smaps_rollup, and a PID that was just freed
    monkeypatch.setattr(memory, "ROLLUP_PATH", str(tmp_path / "missing-{pid}"))
    proc = subprocess.Popen(["true"])
    proc.wait()
    # Then the fallback says so with memdash's error, not psutil's
    with pytest.raises(errors.NoSuchProcess):
        memory.read_detail(proc.pid)


def test_private_hugetlb_pages_count_in_uss(allocator, monkeypatch, tmp_path):
    # Given the child's real smaps_rollup, as if 2 MiB of it were private hugetlbfs pages
    # (which the kernel counts in neither Rss nor Private_Clean/Dirty)
    real = Path(f"/proc/{allocator.pid}/smaps_rollup").read_text()
    hugetlb, found = re.subn(r"(?m)^Private_Hugetlb:\s+\d+ kB$", "Private_Hugetlb: 2048 kB", real)
    assert found == 1, real
    # (both read from the same snapshot: the live child may still be settling)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / str(allocator.pid)).write_text(real)
    (tmp_path / "huge").mkdir()
    (tmp_path / "huge" / str(allocator.pid)).write_text(hugetlb)
    # When memdash reads both
    monkeypatch.setattr(memory, "ROLLUP_PATH", str(tmp_path / "plain" / "{pid}"))
    plain = memory.read_detail(allocator.pid)
    monkeypatch.setattr(memory, "ROLLUP_PATH", str(tmp_path / "huge" / "{pid}"))
    huge = memory.read_detail(allocator.pid)
    # Then the hugetlb pages are private memory: USS has them, nothing else changed
    assert huge["uss"] - plain["uss"] == 2 * MiB
    assert {k: v for k, v in huge.items() if k != "uss"} == {
        k: v for k, v in plain.items() if k != "uss"
    }


def test_statm_reader_reports_exit_and_never_reads_a_reused_pid(allocator):
    # Given a reader opened on a live child
    reader = memory.StatmReader(allocator.pid)
    assert reader.read()["rss"] > 0
    # When the child exits (and is reaped, so its PID is free for reuse)
    allocator.exit()
    # Then the reader says it is gone instead of reading whatever has that PID now
    with pytest.raises(errors.ProcessGone):
        reader.read()
    reader.close()


def test_a_reused_pid_is_another_process():
    # Given a process we know by PID and create time, and a reader open on it
    first = subprocess.Popen(["sleep", "60"])
    key = memory.identify(first.pid)
    reader = memory.StatmReader(first.pid)
    # Create times count in clock ticks (10 ms): the newcomer must be born ticks later to
    # differ, so this is the age the first process needs, not a wait for a condition.
    time.sleep(0.05)
    # When it exits and a new process gets the same PID
    first.kill()
    first.wait()
    second = spawn_with_pid(key.pid, ["sleep", "60"])
    try:
        # Then the key no longer matches (same PID, later birth), and the old reader refuses
        # to read the newcomer
        newcomer = memory.identify(key.pid)
        assert newcomer != key
        assert newcomer.pid == key.pid and newcomer.create_time > key.create_time
        with pytest.raises(errors.ProcessGone):
            reader.read()
    finally:
        reader.close()
        second.kill()
        second.wait()


def test_a_key_is_pid_and_create_time(allocator):
    # Given the key of a live process
    key = memory.identify(allocator.pid)
    assert key == (allocator.pid, psutil.Process(allocator.pid).create_time())
    # When it is identified again, after it changed (allocated)
    allocator.alloc(1)
    # Then it is the same process, and one with the same PID but another create time is not
    assert memory.identify(allocator.pid) == key
    assert memory.identify(allocator.pid) != memory.ProcessKey(key.pid, key.create_time - 1)


@pytest.mark.parametrize(
    "value, error",
    [
        ("abc", errors.BadPid),
        ("-5", errors.BadPid),
        ("0", errors.BadPid),
        (str(2**40), errors.BadPid),
        ("1.5", errors.BadPid),
    ],
)
def test_bad_pid_text_is_a_bad_pid(value, error):
    with pytest.raises(error):
        memory.parse_pid(value)


def test_check_pid_refuses_bools_and_strings():
    for value in (True, "12", 1.0, None, [1]):
        with pytest.raises(errors.BadPid):
            memory.check_pid(value)


def test_nonexistent_pid_is_no_such_process():
    # Given a PID that was just freed
    proc = subprocess.Popen(["true"])
    proc.wait()
    # Then identifying or reading it says so
    with pytest.raises(errors.NoSuchProcess):
        memory.identify(proc.pid)
    with pytest.raises(errors.NoSuchProcess):
        memory.read_fast(proc.pid)


def test_kernel_thread_is_refused():
    # kthreadd is PID 2 on Linux
    with pytest.raises(errors.KernelThread):
        memory.identify(2)


def test_zombie_is_refused():
    # Given a child that exited but was not reaped yet
    proc = subprocess.Popen(["true"])
    wait_for(lambda: memory.describe(proc.pid)["status"] == "zombie", message="a zombie")
    # Then it cannot be watched
    with pytest.raises(errors.ZombieProcess):
        memory.identify(proc.pid)
    proc.wait()


def as_nobody(function) -> str:
    """Run ``function`` in a forked child that dropped root; return what it returns."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no interpreter start-up, so no files to read as nobody
        try:
            os.setgid(65534)
            os.setuid(65534)
            result = function()
        except BaseException as e:  # report anything back to the parent
            result = f"raised {e!r}"
        os.write(write_end, str(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


def test_another_users_process_is_access_denied():
    # Given a reader that is not the owner of PID 1 (root's), nor root
    def read_init():
        try:
            memory.read_detail(1)
        except errors.AccessDenied as e:
            return e.code
        return "read it"

    # When it reads PID 1's detail figures
    result = as_nobody(read_init) if os.geteuid() == 0 else read_init()
    # Then the OS's PermissionError comes out as memdash's access_denied
    assert result == "access_denied"


def test_system_figures_are_consistent():
    s = memory.system()
    assert 0 < s["available"] <= s["total"]
    assert s["used"] == s["total"] - s["available"]


def test_list_processes_is_sorted_by_rss_and_filters(allocator):
    allocator.alloc(20)
    query = str(allocator.pid)
    found = memory.list_processes(query, limit=50)
    assert allocator.pid in [p["pid"] for p in found]
    assert all(query in f"{p['pid']} {p['name']} {p['cmdline']}" for p in found)
    everyone = memory.list_processes("", limit=20)
    rss = [p["rss"] for p in everyone]
    assert rss == sorted(rss, reverse=True)


def test_mappings_show_heap_or_anonymous_growth(allocator):
    before = memory.read_mappings(allocator.pid)
    allocator.alloc(32)
    after = memory.read_mappings(allocator.pid)

    def anon(ms):
        return sum(m["rss"] for m in ms if m["kind"] in ("heap", "anonymous"))

    assert anon(after) - anon(before) >= 30 * MiB
    # Every mapping has the shape the mappings diff reads; nameless ones have an empty name
    for m in after:
        assert set(m) == {"address", "name", "kind", "rss"}, m
        start, end = (int(x, 16) for x in m["address"].split("-"))
        assert start < end and isinstance(m["rss"], int) and m["rss"] <= end - start
        assert m["kind"] in ("heap", "anonymous", "file", "stack", "other"), m
    kinds = {m["kind"] for m in after}
    assert {"heap", "anonymous", "file", "stack"} <= kinds, kinds
    assert any(m["name"] == "" for m in after) and not any(m["name"] == "[anon]" for m in after)
    # And the RSS of all mappings adds up to the process's RSS (within 1 MiB)
    assert abs(sum(m["rss"] for m in after) - allocator.vmrss()) <= MiB
