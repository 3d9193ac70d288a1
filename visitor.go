package chatrabridge

// Visitor is a Chatra visitor's card as the bridge knows it: who they are and where they
// came from. It is the visitor-info signal's payload and what the activities write into
// Planfix. Empty fields are unknown (they never erase what is already known).
type Visitor struct {
	Name    string            `json:"name,omitempty"`
	Email   string            `json:"email,omitempty"`
	Phone   string            `json:"phone,omitempty"`
	City    string            `json:"city,omitempty"`
	Country string            `json:"country,omitempty"`
	Pages   []string          `json:"pages,omitempty"`
	Source  string            `json:"source,omitempty"`
	Device  string            `json:"device,omitempty"`
	OS      string            `json:"os,omitempty"`
	Browser string            `json:"browser,omitempty"`
	IP      string            `json:"ip,omitempty"`
	Extra   map[string]string `json:"extra,omitempty"`
}
