#!/usr/bin/env python3
"""Capture what a technician sees at four moments of `swapguard demo`,
through a real pseudo-terminal of 80x24, as plain text: the first step, a
physical step, a rebuild wait and a halt. Escape sequences are interpreted
(carriage returns, erased lines, cursor moves), so each file is the screen
as it stood, not the byte stream.

    scripts/capture-screens.sh [path/to/swapguard]

Writes docs/screens/*.txt. Re-run it after the terminal output changes.
"""

import os
import pty
import re
import select
import struct
import sys
import fcntl
import termios
import time

COLS, ROWS = 80, 24
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Screen:
    """A small terminal: enough of VT100 for what swapguard, dialoguer and
    indicatif send (CR, LF, BS, erase line/screen, cursor up/down/column)."""

    def __init__(self):
        self.lines = [""]
        self.row = 0
        self.col = 0
        self.esc = None

    def put(self, ch):
        # Deferred wrap, as xterm does it: a character in the last column
        # leaves the cursor there; only the next character wraps.
        if self.col >= COLS:
            self.newline()
        line = self.lines[self.row].ljust(self.col)
        self.lines[self.row] = line[: self.col] + ch + line[self.col + 1 :]
        self.col += 1

    def newline(self):
        self.row += 1
        self.col = 0
        if self.row == len(self.lines):
            self.lines.append("")

    def csi(self, params, final):
        nums = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] or [0]
        n = nums[0] or 1
        if final == "A":
            self.row = max(0, self.row - n)
        elif final == "B":
            self.row += n
            while self.row >= len(self.lines):
                self.lines.append("")
        elif final == "G":
            self.col = n - 1
        elif final == "K":
            line = self.lines[self.row]
            if nums[0] == 2:
                self.lines[self.row] = ""
            elif nums[0] == 0:
                self.lines[self.row] = line[: self.col]
        elif final == "J":
            if nums[0] in (0,):
                self.lines[self.row] = self.lines[self.row][: self.col]
                del self.lines[self.row + 1 :]
        # colours (m), cursor visibility (h/l) and the rest draw nothing

    def feed(self, text):
        for ch in text:
            if self.esc is not None:
                self.esc += ch
                if self.esc == "[":
                    continue
                if not self.esc.startswith("["):
                    self.esc = None
                    continue
                if ch.isalpha() or ch in "@`~":
                    self.csi(self.esc[1:-1], ch)
                    self.esc = None
                continue
            if ch == "\x1b":
                self.esc = ""
            elif ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.newline()
            elif ch == "\b":
                self.col = max(0, self.col - 1)
            elif ch >= " ":
                self.put(ch)

    def view(self):
        """The last ROWS rows, as a terminal shows them."""
        end = len(self.lines)
        while end > 1 and not self.lines[end - 1].strip():
            end -= 1
        rows = [l.rstrip() for l in self.lines[max(0, end - ROWS) : end]]
        return "\n".join(rows) + "\n"


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/swapguard")
    out_dir = os.path.join(ROOT, "docs/screens")
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ, TERM="xterm-256color", NO_COLOR="1", LANG="C.UTF-8")
    env.pop("LC_ALL", None)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execve(binary, [binary, "demo"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    screen = Screen()
    seen = ""
    # (file, what must have been printed, what must be on screen now)
    shots = [
        ("1-first-step.txt", "PART 1", re.compile(r"STEP 1 OF \d+[\s\S]*y/n\]")),
        ("2-physical-step.txt", "PART 1", re.compile(r"\(physical\)[\s\S]*change is seen[\s\S]*elapsed, .* left")),
        ("3-rebuild-wait.txt", "PART 1", re.compile(r"recover of md0 .*\d+%.*left")),
        ("4-halt.txt", "PART 2", re.compile(r"STOP . [\s\S]*\n!{79}")),
    ]
    answers = [("PART 1", "y/n", "y"), ("PART 1", "type it here", "0003"), ("PART 2", "y/n", "y")]
    answered_to = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            data = os.read(fd, 1)
        except OSError:
            break
        if not data:
            break
        text = data.decode("utf-8", "replace") if data < b"\x80" else None
        if text is None:
            rest = data
            while True:
                try:
                    text = rest.decode("utf-8")
                    break
                except UnicodeDecodeError:
                    rest += os.read(fd, 1)
        screen.feed(text)
        seen += text
        view = screen.view()
        if shots and shots[0][1] in seen and shots[0][2].search(view):
            name = shots.pop(0)[0]
            with open(os.path.join(out_dir, name), "w") as f:
                f.write(view)
            print(f"wrote docs/screens/{name}")
        if answers and answers[0][0] in seen:
            part, prompt, reply = answers[0]
            at = seen.find(prompt, max(answered_to, seen.find(part)))
            if at >= 0:
                answers.pop(0)
                answered_to = at + len(prompt)
                time.sleep(0.2)
                os.write(fd, (reply + "\r").encode())
    os.waitpid(pid, 0)
    if shots:
        sys.exit(f"screens not captured: {[s[0] for s in shots]}; the demo printed:\n{seen[-2000:]}")

if __name__ == "__main__":
    main()
