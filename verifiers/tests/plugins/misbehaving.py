#!/usr/bin/env python3
"""A test plugin that misbehaves on request: the completion says how."""
import json
import os
import subprocess
import sys
import time

for line in sys.stdin:
    request = json.loads(line)
    how = request["completion"]
    if how == "crash":
        print("about to crash on purpose", file=sys.stderr, flush=True)
        os._exit(3)
    elif how.startswith("hang"):
        # Leave a grandchild behind too: a timeout must kill the whole process group.
        child = subprocess.Popen(["sleep", "1000"])
        with open(request["fields"]["pid_file"], "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        time.sleep(1000)
    elif how == "garbage":
        print("this is not json", flush=True)
    elif how == "refuse":
        print(json.dumps({"unscorable": "no gold for this one"}), flush=True)
    elif how == "nan":
        print('{"reward": NaN}', flush=True)
    else:
        print(json.dumps({"reward": 1.0, "details": str(os.getpid())}), flush=True)
