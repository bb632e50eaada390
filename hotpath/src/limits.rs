//! Every bound in the hot path, named once. Queues, retries, batch sizes and buffers are
//! sized from these at start-up; nothing on the hot path grows past them.
