package workflows

import (
	"testing"
	"time"
)

// Every activity heartbeats, so that one running on a worker that died is retried on
// another within 15 s of the death, not after a minute.
func TestActivitiesOfADeadWorkerAreRetriedWithin15s(t *testing.T) {
	for name, d := range map[string]time.Duration{
		"store":    storeOptions("s").HeartbeatTimeout,
		"planfix":  planfixOptions("p").HeartbeatTimeout,
		"reply":    replyOptions("r").HeartbeatTimeout,
		"reminder": reminderOptions("r").HeartbeatTimeout,
		"chatra":   chatraOptions("c").HeartbeatTimeout,
	} {
		if d <= 0 || d > 15*time.Second {
			t.Errorf("%s activities: heartbeat timeout %v, want at most 15s", name, d)
		}
	}
}
