package planfix

import "strings"

// completedWords name a completed status, best first; a status named with one of
// notCompletedWords is not one, even when it also holds a completed word ("Не выполнена",
// "Incomplete").
var (
	completedWords    = []string{"completed", "complete", "done", "finished", "завершен", "завершён", "выполнен", "закрыт", "closed", "resolved", "готов"}
	notCompletedWords = []string{"не ", "not ", "incomplete", "uncomplete", "unfinished", "cancel", "отмен", "отклон", "отказ", "reject", "fail", "провал"}
)

// completedRank ranks an inactive status by its name as a completed status: the index of
// the first completed word it holds, -1 when it is not one.
func completedRank(s Status) int {
	if s.IsActive {
		return -1
	}
	name := strings.ToLower(strings.TrimSpace(s.Name))
	for _, w := range notCompletedWords {
		if strings.Contains(name, w) {
			return -1
		}
	}
	for rank, w := range completedWords {
		if strings.Contains(name, w) {
			return rank
		}
	}
	return -1
}

// CompletedStatus is the status a task gets when its chat ends, among a process's
// statuses: the inactive one whose name says "completed" best ("Завершенная",
// "Выполненная", "Done", ...; completedWords, in that order), never one whose name says
// otherwise ("Не выполнена", "Incomplete": notCompletedWords); nil when there is none.
// It is the one rule of the bridge: the admin API resolves a left-out completedStatusId
// with it, verify checks it, and completing a task whose integration has none set uses it.
func CompletedStatus(statuses []Status) *Status {
	var best *Status
	bestRank := len(completedWords)
	for i, s := range statuses {
		if r := completedRank(s); r >= 0 && r < bestRank {
			best, bestRank = &statuses[i], r
		}
	}
	return best
}
