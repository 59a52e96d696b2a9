#!/usr/bin/env node
// Keep package-lock.json free of registry host names (a project rule).
//
//   node scripts/npm-lock.js          strip every "resolved" URL from the lock, in place
//   node scripts/npm-lock.js --check  exit 1 if the lock still names a registry
//
// `npm ci` does not need "resolved": it fetches each name@version from the registry
// the user's npm is configured with and checks it against "integrity", which stays.
"use strict";

const fs = require("fs");
const path = require("path");

const lockPath = path.join(__dirname, "..", "package-lock.json");
const check = process.argv.includes("--check");
const text = fs.readFileSync(lockPath, "utf8");
const lock = JSON.parse(text);

const offenders = [];
for (const [name, entry] of Object.entries(lock.packages || {})) {
  if (entry && typeof entry === "object" && "resolved" in entry) {
    offenders.push(name || "(root)");
    if (!check) delete entry.resolved;
  }
}
// lockfileVersion 1 style, in case an old npm wrote one
(function walk(deps) {
  for (const [name, entry] of Object.entries(deps || {})) {
    if ("resolved" in entry) {
      offenders.push(name);
      if (!check) delete entry.resolved;
    }
    walk(entry.dependencies);
  }
})(lock.dependencies);

if (check) {
  const registryUrl = /"https?:\/\/[^"]*registry[^"]*"/i.test(text) || /npmjs/i.test(text);
  if (offenders.length || registryUrl) {
    console.error(
      `package-lock.json names a registry (${offenders.length} "resolved" fields). ` +
        "Regenerate it with `make lock`."
    );
    process.exit(1);
  }
} else {
  fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + "\n");
  console.log(`package-lock.json: removed ${offenders.length} "resolved" fields`);
}
