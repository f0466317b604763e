-- Argo CD health of a stratus ProviderConfig (stratus.dev). A ProviderConfig is configuration:
-- without conditions it counts as Healthy (like resources Argo CD has no health check for), so
-- an operator that does not report on ProviderConfigs never holds a sync up. Conditions, once
-- written, are honoured the same way as on managed resources.
local hs = {}

local function find(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function message(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local function is(c, status)
  return c ~= nil and c.status == status
end

if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  hs.status = "Healthy"
  hs.message = "No status reported; problems show on the resources that use this ProviderConfig"
  return hs
end

local conditions = obj.status.conditions
local ready = find(conditions, "Ready")
local synced = find(conditions, "Synced")
local stalled = find(conditions, "Stalled")
local reconciling = find(conditions, "Reconciling")

-- Conditions computed from an older spec.
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if observed == nil and ready ~= nil then
  observed = ready.observedGeneration
end
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to check generation " .. generation
  return hs
end

if is(stalled, "True") then
  hs.status = "Degraded"
  hs.message = message(stalled, "Stalled")
  return hs
end

if is(ready, "True") then
  hs.status = "Healthy"
  hs.message = message(ready, "Ready")
  return hs
end

if is(synced, "False") and synced.reason == "ReconcileError" then
  hs.status = "Degraded"
  hs.message = message(synced, "Reconcile error")
  return hs
end

if is(reconciling, "True") then
  hs.status = "Progressing"
  hs.message = message(reconciling, "Reconciling")
  return hs
end

if is(ready, "False") then
  hs.status = "Degraded"
  hs.message = message(ready, ready.reason or "Not ready")
  return hs
end

hs.status = "Progressing"
hs.message = message(ready, "Waiting for the Ready condition")
return hs
