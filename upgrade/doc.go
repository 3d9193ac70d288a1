// Package upgrade tests a rolling deploy from the previous release to the current tree
// (go test ./upgrade -v). It has no code of its own, only TestUpgradeFromPreviousRelease:
//
//   - it builds `chatrabridge` twice, from the commit of the newest release listed in
//     workflows/testdata/releases.txt (a version without a pre-release suffix: a
//     pre-release only records histories; git archive of that commit) and from the
//     current tree, into the test's temporary directory;
//   - it runs an embedded Temporal server, one sandbox (the Chatra and Planfix stand-ins)
//     per conversation, so that each is a Planfix account of its own for the rate limit,
//     and a fresh PostgreSQL database that the old binary migrates;
//   - two old workers (`chatrabridge-old worker`, real processes) carry conversations to
//     different points of their life: open with messages queued, closed inside the
//     late-reply window, continued as new, still setting its task up;
//   - then the deploy: the new worker starts beside them while signals arrive, one old
//     worker is stopped with SIGTERM and the other killed with SIGKILL, and the new worker
//     alone finishes every conversation (messages, an employee's reply, chat closed);
//   - it asserts what Planfix and Chatra hold (every message once and in order in its task,
//     every reply once in its chat, every task completed), that every workflow completed,
//     and that no history holds a failed workflow task (a non-determinism error shows as
//     one), and prints a table of the conversations.
//
// Without git or without the release's commit (a shallow clone) the test skips, or fails
// when CI is set.
package upgrade
