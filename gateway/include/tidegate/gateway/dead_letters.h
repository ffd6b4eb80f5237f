// The operator's view of dead letters: records a sink refused for good
// (HTTP 4xx, too large for it) and input refused at ingest (oversized, not
// JSON where JSON was required). List and read them beside a running
// gateway; replay them (back into the buffer as new records, for the sink
// that refused them) once the cause is fixed; clear them.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "tidegate/buffer/buffer.h"
#include "tidegate/gateway/operations.h"

namespace tidegate::gateway {

// `list`: one line per dead letter, payload cut to a preview.
int list_dead_letters(const OperatorContext& ctx, std::uint64_t limit);
// `show ID`: every field, the whole payload.
int show_dead_letter(const OperatorContext& ctx, std::int64_t id);
// `export`: JSON lines, whole payloads (see docs/operations.md).
int export_dead_letters(const OperatorContext& ctx, std::ostream& to);
// `replay`: back into the buffer, each for the sink that refused it or for
// `to_sink` when given. Asks first unless --yes.
int replay_dead_letters(const OperatorContext& ctx, const buffer::DeadLetterSelection& which,
                        const std::string& to_sink);
// `clear`: removed for good. Asks first unless --yes.
int clear_dead_letters(const OperatorContext& ctx, const buffer::DeadLetterSelection& which);

// One dead letter as a JSON object (no newline): the record in the envelope
// sinks send, plus id, reason, where it failed and when.
std::string dead_letter_json(const buffer::DeadLetter& letter);

}  // namespace tidegate::gateway
