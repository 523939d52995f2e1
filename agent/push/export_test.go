package push

// RetryPolicy is the backoff between retries of a failed push, for the tests.
var RetryPolicy = retryPolicy
