-- KEYS[1] the bucket
-- ARGV[1] tokens per second, ARGV[2] burst (bucket size),
-- ARGV[3] tokens that must be there to pass, ARGV[4] most tokens taken when it passes
-- Returns {1, 0, tokens taken} when it passes, else {0, milliseconds until it would, 0}.
local wait, taken = take_tokens(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if wait > 0 then
  return {0, wait, 0}
end
return {1, 0, taken}
