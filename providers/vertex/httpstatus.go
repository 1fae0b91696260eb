package vertex

import (
	"errors"

	"google.golang.org/api/googleapi"
)

func httpStatus(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}
