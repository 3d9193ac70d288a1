package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/chatrabridge/chatrabridge"
)

// errorStatus maps domain error codes to HTTP statuses. It is the only such mapping.
func errorStatus(code string) int {
	switch code {
	case chatrabridge.EINVALID:
		return http.StatusBadRequest
	case chatrabridge.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case chatrabridge.EFORBIDDEN:
		return http.StatusForbidden
	case chatrabridge.ENOTFOUND:
		return http.StatusNotFound
	case chatrabridge.ECONFLICT:
		return http.StatusConflict
	case chatrabridge.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case chatrabridge.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case chatrabridge.ELIMIT:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong; Field names the offending input, when there is one.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// errorHandler writes err as an ErrorBody. Echo's own errors (unknown route, wrong
// method, body too large) keep their status; internal errors are logged, and the
// client sees only "internal error".
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var (
			status int
			detail ErrorDetail
			he     *echo.HTTPError
		)
		var domain *chatrabridge.Error
		if errors.As(err, &he) && !errors.As(he.Internal, &domain) {
			status = he.Code
			detail = ErrorDetail{Code: echoCode(he.Code), Message: http.StatusText(he.Code)}
			if he.Code == http.StatusRequestEntityTooLarge {
				detail.Message = "request body is larger than 1 MiB"
			}
		} else {
			code := chatrabridge.ErrorCode(err)
			status = errorStatus(code)
			detail = ErrorDetail{Code: code, Message: chatrabridge.ErrorMessage(err), Field: chatrabridge.ErrorField(err)}
		}
		if status >= 500 {
			logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", status, "error", err)
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, ErrorBody{Error: detail})
		}
		if err != nil {
			logger.Debug("write error answer", "error", err)
		}
	}
}

func echoCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return chatrabridge.ENOTFOUND
	case http.StatusRequestEntityTooLarge:
		return chatrabridge.ETOOLARGE
	case http.StatusUnauthorized:
		return chatrabridge.EUNAUTHORIZED
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	}
	if status < 500 {
		return chatrabridge.EINVALID
	}
	return chatrabridge.EINTERNAL
}
